"""The timeline of which version held which environment when, and its SVG picture."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from mlflow_gitops.desired.history import Revision, changes
from mlflow_gitops.planning.timeline import (
    ApplyRecord,
    Timeline,
    annotate,
    authors,
    segments_of,
    timeline,
)
from mlflow_gitops.planning.timeline_svg import render_svg

from tests.support.envfiles import HEADER

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"


def text(model: str, version: int | None) -> str:
    body = f"models:\n  {json.dumps(model)}: {version}\n" if version else "models: {}\n"
    return HEADER + "target:\n  stage: Production\n" + body


def rev(n: int, model: str, version: int | None, hours: float, author: str = "Ada <a@x>"
        ) -> Revision:
    return Revision(f"{n:040x}", author, T0 + timedelta(hours=hours), f"commit {n}",
                    text(model, version))


def test_segments_follow_assignments_and_the_newest_is_open() -> None:
    """Each assignment starts a segment that the next one ends; the newest runs until now."""
    revs = [rev(3, "m", 1, 5), rev(2, "m", 2, 2), rev(1, "m", 1, 0)]  # newest first
    tl = timeline("m", {"production": "environments/production.yaml"}, {"production": revs})
    assert [(s.version, s.start, s.end) for s in tl.segments] == [
        (1, T0, T0 + timedelta(hours=2)),
        (2, T0 + timedelta(hours=2), T0 + timedelta(hours=5)),
        (1, T0 + timedelta(hours=5), None)]
    assert tl.segments[1].commit == f"{2:040x}"
    assert authors(tl)[f"{2:040x}"] == "Ada <a@x>"


def test_removal_closes_the_segment_and_unrelated_commits_do_not_split_it() -> None:
    """A commit that drops the model ends its segment; a commit that leaves it unchanged
    (another model edited) or an invalid file does not start a new one."""
    broken = Revision(f"{9:040x}", "Eve <e@x>", T0 + timedelta(hours=3), "broken", "::: no")
    revs = [rev(4, "m", None, 4), broken, rev(2, "m", 2, 1), rev(1, "m", 2, 0)]
    segs = segments_of(changes(revs, "environments/production.yaml", "production", "m"))
    assert [(s.version, s.start, s.end) for s in segs] == [(2, T0, T0 + timedelta(hours=4))]


def test_annotate_marks_applied_segments_from_records_and_lineage_tags() -> None:
    """An apply record for the same (environment, version, commit) sets applied_at; a
    lineage tag naming the commit sets recorded; other models' records are ignored."""
    revs = [rev(2, "m", 2, 2), rev(1, "m", 1, 0)]
    tl = timeline("m", {"production": "environments/production.yaml"}, {"production": revs})
    at = T0 + timedelta(hours=2, minutes=1)
    records = [ApplyRecord(at, "production", "m", 2, "promote", f"{2:040x}", "m v2"),
               ApplyRecord(at, "production", "other", 1, "promote", f"{1:040x}", "o v1")]
    marked = annotate(tl, records, {1: {"production": f"{1:040x}"}})
    assert [(s.applied_at, s.recorded) for s in marked.segments] == [(None, True), (at, False)]


def test_svg_is_well_formed_with_one_bar_per_segment_and_escaped_labels() -> None:
    """Environment and model names with markup characters are escaped: the SVG parses as
    XML, shows the names as text and carries one bar group per segment; an environment
    the model never held gets no lane."""
    hostile = '<img src=x onerror=alert(1)> "q" & co'
    revs = [rev(2, hostile, 2, 2), rev(1, hostile, 1, 0)]
    tl = timeline(hostile, {"prod<&>": "environments/production.yaml", "staging": "s.yaml"},
                  {"prod<&>": revs})
    svg = render_svg(tl, T0 + timedelta(hours=3))
    assert "<img" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert hostile in root.find(f"{SVG}title").text  # type: ignore[union-attr]
    groups = root.findall(f".//{SVG}g[@class='segment']")
    assert [(g.get("data-env"), g.get("data-version")) for g in groups] == [
        ("prod<&>", "1"), ("prod<&>", "2")]
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "prod<&>" in labels and "staging" not in labels  # a lane it never held is left out


def test_svg_of_an_empty_timeline_says_so() -> None:
    """Without any assignment the picture is still valid SVG with a sentence, not a blank."""
    svg = render_svg(Timeline("m", ("production",), ()), T0)
    root = ET.fromstring(svg)
    assert any("no assignment" in (t.text or "") for t in root.iter(f"{SVG}text"))


def test_applied_at_a_later_commit_marks_the_segment_that_held_then() -> None:
    """Two merges between passes: the controller applies v2 at the later commit (which
    changed another model); the v2 segment is marked applied and recorded, and the author
    of that later commit is known for "who set it"."""
    other = Revision(f"{3:040x}", "Cy <c@x>", T0 + timedelta(hours=3), "other model",
                     text("m", 2).replace("  \"m\": 2\n", "  \"m\": 2\n  \"n\": 1\n"))
    revs = [other, rev(2, "m", 2, 2), rev(1, "m", 1, 0)]
    tl = timeline("m", {"production": "environments/production.yaml"}, {"production": revs})
    assert [s.version for s in tl.segments] == [1, 2]
    at = T0 + timedelta(hours=3, seconds=5)
    marked = annotate(tl, [ApplyRecord(at, "production", "m", 2, "promote", f"{3:040x}", "")],
                      {2: {"production": f"{3:040x}"}})
    assert [(s.applied_at, s.recorded) for s in marked.segments] == [(None, False), (at, True)]
    assert authors(tl)[f"{3:040x}"] == "Cy <c@x>"


def test_a_merged_version_that_does_not_hold_is_pending_and_drawn_as_an_outline() -> None:
    """The newest assignment whose version is not live (a refused promotion) is pending
    and drawn dashed; the version that still holds is not."""
    revs = [rev(2, "m", 2, 2), rev(1, "m", 1, 0)]
    tl = timeline("m", {"production": "environments/production.yaml"}, {"production": revs})
    marked = annotate(tl, live={"production": (1,)})
    assert [s.pending for s in marked.segments] == [False, True]
    root = ET.fromstring(render_svg(marked, T0 + timedelta(hours=3)))
    outlines = root.findall(f".//{SVG}rect[@class='pending']")
    assert len(outlines) == 1 and outlines[0].get("stroke-dasharray")
    assert [s.pending for s in annotate(tl, live={"production": (2,)}).segments] == [False,
                                                                                   False]


def test_a_version_unlisted_in_git_but_still_live_keeps_its_bar_open() -> None:
    """promote takes v2 out of staging.yaml in the commit that gives it to production; while
    v2 is still live in staging the staging bar does not end at that merge."""
    revs = [rev(2, "m", None, 2), rev(1, "m", 2, 0)]
    tl = timeline("m", {"staging": "environments/staging.yaml"}, {"staging": revs})
    assert tl.segments[0].end == T0 + timedelta(hours=2)
    assert annotate(tl, (), None, {"staging": (2,)}).segments[0].end is None
    assert annotate(tl, (), None, {"staging": ()}).segments[0].end == T0 + timedelta(hours=2)
