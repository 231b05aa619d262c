"""The documentation stands alone: every relative link and repository path in README.md and
docs/*.md exists, every docs/ path that --help names exists, and no text a user reads (docs,
--help, metric help, the source) cites a document the user does not have."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest
from mlflow_gitops.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Markdown links `[text](target)`; images `![alt](target)` too.
LINK = re.compile(r"\]\(([^)\s]+)\)")
#: A path in backticks that starts at one of this repository's own top-level folders
#: (`environments/...` is left out: the docs use it for the reader's repository too).
REPO_PATH = re.compile(r"`((?:docs|manifests|examples|controller|bench|tests)"
                       r"/[\w./-]+)`")
#: Words that cite a private document or a tracker: "SPEC", "§4b", "issue 23", "#23".
FOREIGN = re.compile(r"\bSPEC\b|§|\bissues? #?\d+|(?<![\w&/])#\d+\b")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", doc.read_text(), flags=re.M)}


def _help_texts() -> dict[str, str]:
    parser = build_parser()
    texts = {"mlflow-gitops": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts.update({name: sub.format_help() for name, sub in action.choices.items()})
    return texts


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_and_path_in_the_docs_exists(doc: Path) -> None:
    """A link to a file, a heading in a file, or a `docs/...`-style path leads somewhere."""
    text = doc.read_text()
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists() or anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(target)
    for path in REPO_PATH.findall(text):
        if not any(c in path for c in "<*{") and not (ROOT / path.rstrip(".")).exists():
            broken.append(path)
    assert not broken, f"{doc.name}: broken links or paths {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_cites_a_document_users_do_not_have(doc: Path) -> None:
    """README and docs/ speak in their own words: no SPEC, no §, no issue numbers."""
    hits = [line for line in doc.read_text().splitlines() if FOREIGN.search(line)]
    assert not hits, f"{doc.name}: {hits}"


def test_help_texts_stand_alone() -> None:
    """Every command's --help names only docs that exist and cites no private document."""
    for name, text in _help_texts().items():
        assert not FOREIGN.search(text), f"{name} --help: {FOREIGN.search(text)}"
        for path in re.findall(r"docs/[\w.-]+", " ".join(text.split())):
            assert (ROOT / path.rstrip(".,)")).exists(), f"{name} --help names {path}"


def test_no_tracked_file_cites_a_document_outside_the_repository() -> None:
    """The code, its tests, the benchmarks, CI, the manifests and the examples (and so the
    metric help strings /metrics shows) never cite SPEC, a section sign, an issue number or
    a folder beside the checkout."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    pattern = re.compile(r"\bSPEC\b|§|\bissues? #?\d+|\.\./shared")
    offenders = []
    for name in tracked:
        path = ROOT / name
        if name == "tests/unit/test_docs.py" or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1)
                      if pattern.search(line)]
    assert not offenders, offenders
