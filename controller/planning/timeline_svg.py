"""A Timeline → one self-contained SVG picture (no scripts, no external fonts or images), for
the web page, a pull request or a report: one lane per environment, one bar per version
that held it, coloured by version, the commit and author in each bar's tooltip, a dot
where the controller applied it. Pure: every text is XML-escaped here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

from mlflow_gitops.planning.timeline import Segment, Timeline

#: Colour-blind-friendly bar colours (Okabe–Ito, darkened for white text), by version.
PALETTE = ("#0b6fa4", "#c25e00", "#107a5a", "#8e3f8c", "#6b6b00", "#b23a48", "#3d5a80",
           "#7a5c00")
WIDTH = 960
LABEL = 150  # left column for environment names
LANE = 36
TOP = 34
AXIS = 36
FONT = "system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def colour(version: int) -> str:
    return PALETTE[(version - 1) % len(PALETTE)]


def _fmt(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _tip(s: Segment) -> str:
    until = _fmt(s.end) if s.end else "now"
    lines = [f"{s.environment}: v{s.version}", f"{_fmt(s.start)} → {until}",
             f"commit {s.commit[:12]} by {s.author}"]
    if s.subject:
        lines.append(s.subject)
    if s.pending:
        lines.append("not applied: it does not hold the environment")
    elif s.applied_at:
        lines.append(f"applied {_fmt(s.applied_at)}")
    elif s.recorded:
        lines.append("applied (lineage tag)")
    return "\n".join(lines)


def _ticks(start: datetime, end: datetime, count: int = 5) -> list[datetime]:
    step = (end - start) / count
    return [start + step * i for i in range(count + 1)]


def render_svg(timeline: Timeline, now: datetime, title: str | None = None) -> str:
    """The picture at time `now` (open segments run until it)."""
    lanes = timeline.environments
    height = TOP + LANE * max(len(lanes), 1) + AXIS
    heading = title if title is not None else f"{timeline.model}: which version held which " \
        "environment when"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="{FONT}" font-size="13">',
           f"<title>{escape(heading)}</title>",
           f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
           f'<text x="12" y="22" font-size="14" font-weight="600" fill="#1f2933">'
           f"{escape(heading)}</text>"]
    span = timeline.span
    if span is None:
        out.append(f'<text x="{LABEL}" y="{TOP + 22}" fill="#52606d">no assignment in the git '
                   "history read</text></svg>")
        return "\n".join(out)
    start, last = span
    end = max(last, now)
    if end - start < timedelta(minutes=1):
        end = start + timedelta(minutes=1)
    start -= (end - start) * 0.02
    scale = (WIDTH - LABEL - 16) / (end - start).total_seconds()

    def x(when: datetime) -> float:
        return round(LABEL + (when - start).total_seconds() * scale, 1)

    for i, env in enumerate(lanes):
        y = TOP + i * LANE
        fill = "#f5f7fa" if i % 2 == 0 else "#ffffff"
        out.append(f'<rect x="0" y="{y}" width="{WIDTH}" height="{LANE}" fill="{fill}"/>')
        out.append(f'<text x="12" y="{y + LANE / 2 + 4.5}" fill="#1f2933" font-weight="600">'
                   f"{escape(_clip(env, 18))}</text>")
        for s in timeline.lane(env):
            x0, x1 = x(s.start), x(s.end or max(now, s.start))
            w = max(x1 - x0, 3.0)
            out.append(f'<g class="segment" data-env={quoteattr(env)} '
                       f'data-version="{s.version}"><title>{escape(_tip(s))}</title>')
            if s.pending:  # merged but not holding: an outline, not a bar
                out.append(f'<rect class="pending" x="{x0}" y="{y + 6}" width="{round(w, 1)}" '
                           f'height="{LANE - 12}" rx="4" fill="#ffffff" '
                           f'stroke="{colour(s.version)}" stroke-width="1.5" '
                           'stroke-dasharray="4 3"/>')
            else:
                out.append(f'<rect x="{x0}" y="{y + 6}" width="{round(w, 1)}" '
                           f'height="{LANE - 12}" rx="4" fill="{colour(s.version)}"'
                           + ("" if s.end else ' stroke="#1f2933" stroke-width="1.5"') + "/>")
            if w >= 34:
                out.append(f'<text x="{round(x0 + 7, 1)}" y="{y + LANE / 2 + 4.5}" '
                           f'fill="{colour(s.version) if s.pending else "#ffffff"}" '
                           f'font-weight="600">v{s.version}</text>')
            if s.applied_at is not None:
                out.append(f'<circle class="applied" cx="{x(s.applied_at)}" cy="{y + LANE / 2}" '
                           'r="4.5" fill="#ffd43b" stroke="#1f2933" stroke-width="1.2"/>')
            out.append("</g>")
    axis_y = TOP + LANE * len(lanes)
    out.append(f'<line x1="{LABEL}" y1="{axis_y}" x2="{WIDTH - 16}" y2="{axis_y}" '
               'stroke="#9aa5b1"/>')
    ticks = _ticks(start, end)
    for n, tick in enumerate(ticks):
        tx = x(tick)
        anchor = "start" if n == 0 else "end" if n == len(ticks) - 1 else "middle"
        out.append(f'<line x1="{tx}" y1="{axis_y}" x2="{tx}" y2="{axis_y + 5}" '
                   'stroke="#9aa5b1"/>')
        out.append(f'<text x="{tx}" y="{axis_y + 20}" text-anchor="{anchor}" font-size="11" '
                   f'fill="#52606d">{escape(_tick_label(tick, end - start))}</text>')
    out.append(f'<line x1="{x(now)}" y1="{TOP}" x2="{x(now)}" y2="{axis_y}" stroke="#e12d39" '
               'stroke-dasharray="3 3"><title>now</title></line>')
    out.append("</svg>")
    return "\n".join(out)


def _tick_label(when: datetime, width: timedelta) -> str:
    when = when.astimezone(timezone.utc)
    if width <= timedelta(hours=1):
        return when.strftime("%H:%M:%S")
    if width <= timedelta(days=2):
        return when.strftime("%m-%d %H:%M")
    return when.strftime("%Y-%m-%d")


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
