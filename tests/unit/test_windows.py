"""Freeze and release windows (`promotion.windows`): crons in IANA time zones,
durations in elapsed time, deny over allow, across daylight-saving changes."""

from __future__ import annotations

from datetime import datetime, timezone

from mlflow_gitops.core.model import Window
from mlflow_gitops.policy.windows import check, covering_end, next_start, opens_at, when


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()  # type: ignore[misc]


def deny(cron: str, seconds: int, tz: str = "UTC") -> Window:
    return Window("deny", cron, seconds, tz)


def allow(cron: str, seconds: int, tz: str = "UTC") -> Window:
    return Window("allow", cron, seconds, tz)


H = 3600
FRIDAY_FREEZE = deny("0 17 * * FRI", 64 * H, "Europe/Berlin")


def test_no_windows_is_always_open() -> None:
    """Without windows promotions always go ahead."""
    assert check((), utc(2026, 12, 4, 18)).open


def test_friday_evening_freeze_in_berlin_opens_monday_morning() -> None:
    """A 64h deny from Friday 17:00 Berlin (CET, UTC+1) blocks Friday 18:00 and opens Monday
    09:00 Berlin, which is 08:00 UTC."""
    result = check((FRIDAY_FREEZE,), utc(2026, 12, 4, 17, 30))  # Fri 18:30 CET
    assert not result.open and result.blocking == (FRIDAY_FREEZE,)
    assert result.opens_at == utc(2026, 12, 7, 8)
    assert when(result.opens_at, "Europe/Berlin") == "2026-12-07 09:00 CET (08:00 UTC)"
    assert result.reason() == "inside deny window '0 17 * * FRI' for 2d16h (Europe/Berlin)"


def test_the_freeze_starts_on_the_minute_and_ends_on_the_minute() -> None:
    """A start at exactly now is inside; the end instant itself is outside."""
    assert not check((FRIDAY_FREEZE,), utc(2026, 12, 4, 16)).open  # 17:00 CET exactly
    assert check((FRIDAY_FREEZE,), utc(2026, 12, 4, 15, 59, 59)).open
    assert check((FRIDAY_FREEZE,), utc(2026, 12, 7, 8)).open


def test_same_cron_differs_by_time_zone() -> None:
    """'0 17 * * FRI' is 17:00 UTC in UTC and 11:30 UTC in Asia/Kolkata (UTC+5:30)."""
    now = utc(2026, 12, 4, 12)
    assert check((deny("0 17 * * FRI", H),), now).open
    assert not check((deny("0 17 * * FRI", H, "Asia/Kolkata"),), now).open
    assert opens_at((deny("0 17 * * FRI", H, "Asia/Kolkata"),), now) == utc(2026, 12, 4, 12, 30)


def test_deny_wins_over_allow() -> None:
    """Inside an allow window but also inside a deny window, promotions wait for the deny's end."""
    windows = (allow("0 8 * * *", 10 * H), deny("0 12 * * *", H))
    assert check(windows, utc(2026, 12, 2, 9)).open
    blocked = check(windows, utc(2026, 12, 2, 12, 30))
    assert not blocked.open and blocked.opens_at == utc(2026, 12, 2, 13)


def test_outside_every_allow_window_waits_for_the_next_one() -> None:
    """With only allow windows, a time outside them waits for the next start."""
    windows = (allow("0 9 * * MON-FRI", 8 * H), allow("0 10 * * SAT", H))
    result = check(windows, utc(2026, 12, 5, 11))  # Saturday, after its hour
    assert not result.open and result.opens_at == utc(2026, 12, 7, 9)  # Monday
    assert result.reason().startswith("outside every allow window ('0 9 * * MON-FRI'")


def test_deny_that_ends_outside_every_allow_waits_for_the_allow() -> None:
    """A deny ending at night, with allow windows only in office hours, opens next morning."""
    windows = (allow("0 9 * * *", 8 * H), deny("0 16 * * *", 4 * H))
    assert opens_at(windows, utc(2026, 12, 2, 16, 30)) == utc(2026, 12, 3, 9)


def test_a_window_never_opening_within_a_year_has_no_opening_time() -> None:
    """An allow on 30 February never opens: blocked, with no opening time."""
    result = check((allow("0 0 30 2 *", H),), utc(2026, 12, 2))
    assert not result.open and result.opens_at is None


def test_back_to_back_deny_windows_are_searched_a_bounded_number_of_steps() -> None:
    """A deny every minute lasting a minute leaves no gap: blocked with no opening time (the
    search stops at its bound instead of walking a year minute by minute)."""
    result = check((deny("* * * * *", 60),), utc(2026, 12, 2, 12, 0, 30))
    assert not result.open and result.opens_at is None


def test_berlin_spring_forward_start_in_the_skipped_hour_begins_an_hour_later() -> None:
    """On 2026-03-29 Berlin skips 02:00-03:00: a 02:30 start begins at 03:30 CEST (01:30 UTC)."""
    window = deny("30 2 * * *", H, "Europe/Berlin")
    assert check((window,), utc(2026, 3, 29, 1, 15)).open  # 03:15 CEST
    assert next_start(window, utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 1, 30)
    blocked = check((window,), utc(2026, 3, 29, 1, 45))
    assert not blocked.open and blocked.opens_at == utc(2026, 3, 29, 2, 30)
    # The day before and after, 02:30 exists: CET (UTC+1) then CEST (UTC+2).
    assert next_start(window, utc(2026, 3, 27, 23)) == utc(2026, 3, 28, 1, 30)
    assert next_start(window, utc(2026, 3, 29, 23)) == utc(2026, 3, 30, 0, 30)


def test_berlin_durations_are_elapsed_time_across_the_change() -> None:
    """A 24h deny from Sunday 00:00 Berlin on the spring-forward day ends 24 elapsed hours
    later, which is 01:00 CEST on Monday on the wall clock."""
    window = deny("0 0 * * SUN", 24 * H, "Europe/Berlin")
    assert covering_end(window, utc(2026, 3, 29, 12)) == utc(2026, 3, 29, 23)


def test_berlin_fall_back_repeated_hour_starts_once() -> None:
    """On 2026-10-25 Berlin repeats 02:00-03:00: a 02:30 start begins once, in CEST (00:30
    UTC), and not again in the repeated CET hour."""
    window = deny("30 2 * * *", 30 * 60, "Europe/Berlin")
    assert not check((window,), utc(2026, 10, 25, 0, 45)).open  # 02:45 CEST
    assert check((window,), utc(2026, 10, 25, 1, 45)).open  # 02:45 CET, the second time
    assert next_start(window, utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 26, 1, 30)


def test_new_york_office_hours_follow_daylight_saving() -> None:
    """09:00 New York is 14:00 UTC before 2026-03-08 (EST) and 13:00 UTC after (EDT)."""
    office = (allow("0 9 * * MON-FRI", 8 * H, "America/New_York"),)
    assert not check(office, utc(2026, 3, 6, 13, 30)).open  # Friday 08:30 EST
    assert opens_at(office, utc(2026, 3, 6, 13, 30)) == utc(2026, 3, 6, 14)
    assert opens_at(office, utc(2026, 3, 7, 12)) == utc(2026, 3, 9, 13)  # Monday, EDT
    assert check(office, utc(2026, 3, 9, 13, 30)).open
    assert when(utc(2026, 3, 9, 13), "America/New_York") == "2026-03-09 09:00 EDT (13:00 UTC)"


def test_new_york_fall_back_window_ends_by_elapsed_time() -> None:
    """A 3h deny from 00:00 New York on 2026-11-01 (EDT→EST at 02:00) ends at 02:00 EST."""
    window = deny("0 0 1 11 *", 3 * H, "America/New_York")
    assert covering_end(window, utc(2026, 11, 1, 5)) == utc(2026, 11, 1, 7)


# -- the window as a promotion gate (policy.rules.evaluate, planner) ---------------------

def _env(*windows: Window, gates: tuple = ()):  # type: ignore[no-untyped-def]
    from mlflow_gitops.core.model import (
        Environment,
        ModelEntry,
        Promotion,
        Target,
        frozen_map,
    )

    return Environment("production", "environments/production.yaml",
                       Target("stage", "Production"),
                       promotion=Promotion(gates=gates, windows=windows, line=7),
                       models=frozen_map({"m": ModelEntry(2, line=12)}))


def _live():  # type: ignore[no-untyped-def]
    from mlflow_gitops.core.model import LiveModel, LiveVersion, frozen_map

    return LiveModel("m", frozen_map({2: LiveVersion("m", 2, run_id=None)}))


def test_a_promotion_inside_a_deny_window_waits_until_it_opens() -> None:
    """Only the window fails: the verdict waits (waiting_until = the opening), naming when."""
    from mlflow_gitops.policy.rules import PolicyFacts, evaluate

    verdict = evaluate(_env(FRIDAY_FREEZE), "m", 2, _live(),
                       PolicyFacts(now=utc(2026, 12, 4, 17, 30), version=2))
    assert not verdict.allowed and verdict.waiting_until == utc(2026, 12, 7, 8)
    assert verdict.message == (
        "m v2 not promoted: promotions into production are frozen (inside deny window "
        "'0 17 * * FRI' for 2d16h (Europe/Berlin)); the window opens 2026-12-07 09:00 CET "
        "(08:00 UTC)")
    gate = verdict.gates[-1]
    assert (gate.name, gate.passed, gate.detail) == \
        ("window", False, "opens 2026-12-07 09:00 CET (08:00 UTC)")
    assert evaluate(_env(FRIDAY_FREEZE), "m", 2, _live(),
                    PolicyFacts(now=utc(2026, 12, 7, 8), version=2)).allowed


def test_a_window_with_another_failed_gate_is_refused_not_waiting() -> None:
    """When a gate that time cannot fix also fails, the verdict is a refusal (no waiting)."""
    from mlflow_gitops.core.model import Gate
    from mlflow_gitops.policy.rules import PolicyFacts, evaluate

    env = _env(FRIDAY_FREEZE, gates=(Gate(tag="validated", equals="yes"),))
    verdict = evaluate(env, "m", 2, _live(), PolicyFacts(now=utc(2026, 12, 4, 17, 30),
                                                         version=2))
    assert not verdict.allowed and verdict.waiting_until is None


def test_a_rollback_is_never_blocked_by_a_window() -> None:
    """A version the controller's record says production served before goes in during a
    freeze (the policy's rollback evidence, `served`)."""
    from mlflow_gitops.policy.evidence import Stint
    from mlflow_gitops.policy.rules import PolicyFacts, evaluate

    served = Stint("production", "abc1234", entered=utc(2026, 11, 1), left=utc(2026, 11, 20))
    verdict = evaluate(_env(FRIDAY_FREEZE), "m", 2, _live(),
                       PolicyFacts(now=utc(2026, 12, 4, 17, 30), version=2, served=served))
    assert verdict.allowed and "rollback" in verdict.note


def test_the_planner_reports_a_waiting_verdict_as_kind_waiting_with_until() -> None:
    """A verdict with waiting_until becomes ModelError kind 'waiting' carrying `until`."""
    from mlflow_gitops.core.plan import Verdict
    from mlflow_gitops.planning.planner import plan

    from tests.support.builders import desired, live

    env = _env(FRIDAY_FREEZE)
    p = plan(desired(env), {"default": live({"m": {1: "Production", 2: "None"}})},
             check=lambda *_: Verdict(False, message="frozen", waiting_until=123.0))
    assert p.changes == ()
    [error] = p.errors
    assert (error.kind, error.until, error.message) == ("waiting", 123.0, "frozen")


def test_a_window_that_cannot_be_evaluated_blocks_and_says_why() -> None:
    """A deny window whose end the clock cannot place (a duration of hundreds of digits, as
    a hand-built value; files cannot say it) closes promotions instead of being skipped."""
    from mlflow_gitops.policy.rules import PolicyFacts, evaluate

    absurd = deny("* * * * *", 10**400)
    result = check((absurd,), utc(2026, 12, 4, 18))
    assert not result.open and result.opens_at is None
    assert "cannot be evaluated (OverflowError)" in result.reason()
    verdict = evaluate(_env(absurd), "m", 2, _live(),
                       PolicyFacts(now=utc(2026, 12, 4, 18), version=2))
    assert not verdict.allowed and verdict.waiting_until is None
    assert "cannot be evaluated" in verdict.message
    assert "once the window can be evaluated (fix the file)" in verdict.message
