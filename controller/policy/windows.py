"""Freeze and release windows, as Argo CD's sync windows.

Each window starts whenever its cron matches the wall clock of its time zone and lasts its
duration in elapsed time. Promotions into an environment may go ahead only outside every
`deny` window and, when any `allow` window is given, inside one of them: deny wins.

Cron matching runs on naive wall-clock times (croniter), and each start is then placed on
the time line with zoneinfo, so daylight-saving changes behave as cron daemons do: a start
in the hour skipped in spring begins an hour later, a start in the hour repeated in autumn
begins once (the first time). Pure: `now` is always passed in.

Fail closed: a window that cannot be evaluated (a duration or date beyond what the clock
can place, a zone or cron the library refuses at run time) blocks promotions, with the
reason, instead of being skipped: a freeze that cannot be read is still a freeze. Only a
cron that never matches (30 February) has no occurrence, and the loader refuses those."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter
from mlflow_gitops.core.model import Window

#: How far ahead to look for an opening; with none within it the promotion is `Refused`
#: (re-checked every pass), since no time to wait for can be named.
HORIZON_SECONDS = 366 * 86400
#: Jumps from one window's edge to the next while searching for an opening: enough for any
#: sane calendar (daily windows for a year), and a bound on what a hostile file costs a pass
#: (a deny every minute that lasts a minute would otherwise be searched minute by minute).
_STEPS = 500


@dataclass(frozen=True)
class WindowCheck:
    """Whether promotions may go ahead at `now`, and if not, why and when they may."""

    open: bool
    blocking: tuple[Window, ...] = ()  # the deny windows in force, or the allows (all closed)
    opens_at: float | None = None  # epoch seconds; None while open or beyond the horizon
    problem: str = ""  # why a window could not be evaluated (then closed, fail-safe)

    def reason(self) -> str:
        if self.open:
            return "inside the release windows"
        if self.problem:
            return self.problem
        denies = [w for w in self.blocking if w.kind == "deny"]
        if denies:
            return "inside deny window " + ", ".join(describe(w) for w in denies)
        return "outside every allow window (" + ", ".join(describe(w) for w in self.blocking) \
            + ")"


def check(windows: tuple[Window, ...], now: float) -> WindowCheck:
    """Are promotions allowed at `now`? If not, which windows block and when they open.
    A window that cannot be evaluated blocks, with no opening time (fail closed)."""
    try:
        blocking = _blocking(windows, now)
        if not blocking:
            return WindowCheck(True)
        return WindowCheck(False, blocking, opens_at(windows, now))
    except Unevaluable as exc:
        return WindowCheck(False, (exc.window,), None,
                           f"window {describe(exc.window)} cannot be evaluated ({exc.cause}); "
                           "promotions stay frozen until the file is fixed")


class Unevaluable(Exception):
    """A window whose occurrences cannot be computed at run time."""

    def __init__(self, window: Window, cause: str) -> None:
        super().__init__(cause)
        self.window, self.cause = window, cause


def opens_at(windows: tuple[Window, ...], now: float) -> float | None:
    """The first time at or after `now` when promotions may go ahead (None: not within a
    year, or not found within the search's bound). Jumps from a blocking deny window's end
    to the next allow window's start until neither blocks."""
    t = now
    allows = [w for w in windows if w.kind == "allow"]
    for _ in range(_STEPS):
        if t - now > HORIZON_SECONDS:
            return None
        ends = [end for w in windows if w.kind == "deny"
                if (end := covering_end(w, t)) is not None]
        if ends:
            t = max(ends)
            continue
        if allows and all(covering_end(w, t) is None for w in allows):
            starts = [s for w in allows if (s := next_start(w, t)) is not None]
            if not starts:
                return None
            t = min(starts)
            continue
        return t
    return None


def covering_end(window: Window, t: float) -> float | None:
    """When the occurrence of `window` that covers instant `t` ends, or None if none does.
    The latest start at or before `t` has the latest end, so it alone decides."""
    zone = ZoneInfo(window.timezone)
    wall = _wall(t, zone) + timedelta(seconds=1)  # a start at exactly `t` counts
    try:
        it = croniter(window.cron, wall)
        for _ in range(3):  # starts shifted past `t` by a skipped hour are passed over
            start = _instant(it.get_prev(datetime), zone)
            if start <= t:
                end = start + window.duration_seconds
                return end if end > t else None
    except CroniterBadDateError:
        pass  # a cron that never matches (e.g. 30 February) has no occurrence
    except (CroniterError, ValueError, OverflowError, TypeError, KeyError) as exc:
        raise Unevaluable(window, type(exc).__name__) from exc
    return None


def next_start(window: Window, t: float) -> float | None:
    """The first start of `window` strictly after instant `t`."""
    zone = ZoneInfo(window.timezone)
    try:
        it = croniter(window.cron, _wall(t, zone))
        for _ in range(3):  # a repeated autumn hour can map a later wall time earlier
            start = _instant(it.get_next(datetime), zone)
            if start > t:
                return start
    except CroniterBadDateError:
        pass
    except (CroniterError, ValueError, OverflowError, TypeError, KeyError) as exc:
        raise Unevaluable(window, type(exc).__name__) from exc
    return None


def describe(window: Window) -> str:
    """"'0 17 * * FRI' for 64h (Europe/Berlin)" as the file writes it."""
    length = _duration(window.duration_seconds) if window.duration_seconds < 10**12 \
        else f"{str(window.duration_seconds)[:12]}...s"
    return f"'{window.cron[:60]}' for {length} ({window.timezone[:60]})"


def when(epoch: float, zone_name: str = "UTC") -> str:
    """'2026-12-07 09:00 CET (08:00 UTC)': a time as people in that zone read it."""
    utc = datetime.fromtimestamp(epoch, timezone.utc)
    if zone_name == "UTC":
        return utc.strftime("%Y-%m-%d %H:%M UTC")
    local = datetime.fromtimestamp(epoch, ZoneInfo(zone_name))
    return f"{local.strftime('%Y-%m-%d %H:%M %Z')} ({utc.strftime('%H:%M UTC')})"


def _blocking(windows: tuple[Window, ...], t: float) -> tuple[Window, ...]:
    denies = tuple(w for w in windows if w.kind == "deny" and covering_end(w, t) is not None)
    if denies:
        return denies
    allows = tuple(w for w in windows if w.kind == "allow")
    if allows and all(covering_end(w, t) is None for w in allows):
        return allows
    return ()


def _wall(t: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: ZoneInfo) -> float:
    """A naive wall time in `zone` as epoch seconds (fold=0: before a DST change)."""
    return wall.replace(tzinfo=zone).timestamp()


def _duration(seconds: int) -> str:
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
