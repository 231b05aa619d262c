"""From desired and live state to decisions: the planner (the smallest set of changes), the
state of every environment × model, projections, proposals, timelines and the
renderers (text, markdown, JSON, SVG). Rule: pure, no I/O; may import `policy`, `desired`
and `core`."""
