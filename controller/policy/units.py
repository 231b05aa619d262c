"""Durations as the policy writes them: the units `min_soak` is written in."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """90061 → '1d1h1m': the same units `min_soak` is written in."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
