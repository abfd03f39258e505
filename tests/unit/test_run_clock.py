"""The rate math of a run: active time leaves pauses out, the time left follows the current wave's pace,
and a finished run's rate is its average over the time it was running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.authorization import AuthorizationRun
from services.engine import run_clock
from services.engine.runs import progress_from

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def new_run(**values) -> AuthorizationRun:
    run = AuthorizationRun(status="running", current_wave=1, started_at=T0, **values)
    run_clock.start(run, T0)
    return run


def test_pauses_and_waiting_for_a_confirmation_do_not_count_as_active_time():
    run = new_run()
    run_clock.set_status(run, "awaiting_confirmation", minutes(10))   # canary done after 10 min
    assert run_clock.active_seconds(run, minutes(70)) == 600          # an hour of waiting adds nothing
    run_clock.set_status(run, "running", minutes(70))
    run_clock.set_status(run, "paused", minutes(80))
    run_clock.set_status(run, "running", minutes(200))
    run_clock.set_status(run, "completed", minutes(205))
    assert run_clock.active_seconds(run, minutes(900)) == 25 * 60


def test_setting_the_same_status_again_does_not_restart_the_clock():
    run = new_run()
    run_clock.set_status(run, "running", minutes(5))
    assert run_clock.active_seconds(run, minutes(10)) == 600


def test_a_finished_run_shows_its_average_over_its_active_time_not_zero():
    run = new_run()
    run_clock.set_status(run, "paused", minutes(10))
    run_clock.set_status(run, "running", minutes(100))
    run_clock.set_status(run, "completed", minutes(110))
    progress = progress_from(run, {"authorized": 180, "failed": 20}, 0, now=minutes(60 * 24))
    assert progress.rate_is_average and progress.rate_per_minute == 10.0  # 200 in 20 minutes of running
    assert progress.eta_seconds is None and progress.active_seconds == 1200


def test_cancelled_attempts_are_not_counted_in_the_average():
    run = new_run()
    run_clock.set_status(run, "cancelled", minutes(10))
    progress = progress_from(run, {"authorized": 50, "cancelled": 950}, 0, now=minutes(30))
    assert progress.rate_per_minute == 5.0


def test_the_time_left_follows_the_current_waves_pace():
    run = new_run(canary_size=100)
    run_clock.set_status(run, "awaiting_confirmation", minutes(20))   # a slow canary: 100 in 20 minutes
    run.current_wave = 2
    run_clock.start_wave(run, minutes(80))
    run_clock.set_status(run, "running", minutes(80))
    # Wave 2 finished 600 in its first 3 minutes: 200 a minute; 1,200 left take 6 minutes. The whole run's
    # average (700 over 23 minutes of running, or worse over 83 minutes with the wait) would say 40 minutes or more.
    progress = progress_from(run, {"authorized": 700, "queued": 1200}, 600, now=minutes(83))
    assert not progress.rate_is_average
    assert progress.rate_per_minute == 200.0 and progress.eta_seconds == 360


def test_a_new_wave_before_anything_finished_has_no_estimate_yet():
    run = new_run()
    progress = progress_from(run, {"queued": 500}, 0, now=minutes(1))
    assert progress.rate_per_minute == 0.0 and progress.eta_seconds is None


def test_a_pause_in_the_middle_of_a_wave_is_left_out_of_its_pace():
    run = new_run()
    run_clock.set_status(run, "paused", minutes(2))
    run_clock.set_status(run, "running", minutes(62))
    assert run_clock.wave_active_seconds(run, minutes(64)) == 240
    assert progress_from(run, {"authorized": 80, "queued": 80}, 80, now=minutes(64)).rate_per_minute == 20.0


def test_the_engines_conditional_pause_adds_the_running_stretch():
    values = run_clock.paused_values(120.0, minutes(0), minutes(3))
    assert values == {"status": "paused", "active_seconds": 300.0, "running_since": None}


def test_per_minute_and_seconds_left():
    assert run_clock.per_minute(30, 90) == 20.0
    assert run_clock.per_minute(5, 0) == 0.0
    assert run_clock.seconds_left(0, 0.0) == 0
    assert run_clock.seconds_left(100, 0.0) is None
    assert run_clock.seconds_left(100, 50.0) == 120


def test_a_run_from_before_the_clock_uses_its_whole_span():
    run = AuthorizationRun(status="completed", started_at=T0, finished_at=minutes(15), active_seconds=0.0)
    assert run_clock.active_seconds(run, minutes(500)) == 900


def test_the_first_seconds_of_a_wave_give_no_pace_yet():
    run = new_run()
    early = progress_from(run, {"authorized": 50, "queued": 950}, 50, now=T0 + timedelta(seconds=3))
    assert early.rate_per_minute == 0.0 and early.eta_seconds is None
    later = progress_from(run, {"authorized": 100, "queued": 900}, 100, now=minutes(1))
    assert later.rate_per_minute == 100.0 and later.eta_seconds == 540


def test_a_run_ended_without_the_clock_counts_until_its_end_not_until_now():
    run = new_run()
    run.status, run.finished_at = "completed", minutes(12)  # set directly, as seeded data may do
    assert run_clock.active_seconds(run, minutes(600)) == 720
