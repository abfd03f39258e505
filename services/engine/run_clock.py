"""A run's clock: how long it has actually been running, and the pace that follows from it.

Pauses, waiting for a confirmation after the canary and the time after the end do not count, so that
a finished run's average rate is its rate while it worked, and the time left follows the current
wave's own pace rather than the whole run's average with its pauses. Every change of a run's status
goes through `set_status` (or `paused_values` for the engine's conditional UPDATE), which stops or
starts the clock; `start_wave` restarts the current wave's clock (a new wave, or a retry).
"""

from __future__ import annotations

from datetime import datetime

from models.authorization import AuthorizationRun
from models.base import utcnow
from services.platform import events

RUNNING = "running"
# The event a move to each status writes (the event log); waiting for a confirmation is a pause too.
ANNOUNCED = {"paused": "run.paused", "awaiting_confirmation": "run.paused", "completed": "run.completed",
             "cancelled": "run.cancelled"}
# A wave's pace is not told before it has run this long: its first batch alone would give a wild figure.
MIN_PACE_SECONDS = 10.0


def active_seconds(run: AuthorizationRun, now: datetime | None = None) -> float:
    """Return the seconds the run has spent running up to now."""
    now = now or utcnow()
    running = 0.0
    if run.running_since is not None:
        # A status set without the clock (an old script, seeded data) ends the stretch at the run's end.
        end = now if run.status == RUNNING else (run.finished_at or run.running_since)
        running = max((end - run.running_since).total_seconds(), 0.0)
    spent = (run.active_seconds or 0.0) + running
    if spent == 0.0 and run.running_since is None and run.finished_at and run.started_at:
        # A run from before the clock existed: its whole span is the best there is.
        spent = max((run.finished_at - run.started_at).total_seconds(), 0.0)
    return spent


def set_status(run: AuthorizationRun, status: str, now: datetime | None = None) -> None:
    """Change the run's status, stopping its clock when it stops running and starting it when it runs.

    A change writes its event (run.paused, run.resumed, ...) with the run as it is now: set the run's
    other columns (pause reason, end) before calling this.
    """
    now = now or utcnow()
    previous = run.status
    if run.status == RUNNING and status != RUNNING and run.running_since is not None:
        run.active_seconds = active_seconds(run, now)
        run.running_since = None
    elif status == RUNNING and run.running_since is None:
        run.running_since = now
    run.status = status
    if previous != status:
        announce(run, "run.resumed" if status == RUNNING else ANNOUNCED.get(status))


def announce(run: AuthorizationRun, event_type: str | None) -> None:
    """Write the run's event (nothing for None), with the run as the API shows it now."""
    if event_type is not None and run.id is not None:
        events.record(event_type, organization_id=run.organization_id, subject_type="run", subject_id=run.id)


def start(run: AuthorizationRun, now: datetime | None = None) -> None:
    """Start the clock of a new run, which starts running now with its first wave."""
    now = now or utcnow()
    run.active_seconds, run.running_since = 0.0, now
    start_wave(run, now)


def start_wave(run: AuthorizationRun, now: datetime | None = None) -> None:
    """Restart the current wave's clock: its pace counts what finishes from now on."""
    now = now or utcnow()
    run.wave_started_at, run.wave_active_offset = now, active_seconds(run, now)


def wave_active_seconds(run: AuthorizationRun, now: datetime | None = None) -> float:
    """Return the seconds the current wave has spent running."""
    return max(active_seconds(run, now) - (run.wave_active_offset or 0.0), 0.0)


def wave_rate(finished_in_wave: int, run: AuthorizationRun, now: datetime | None = None) -> float:
    """Return the current wave's pace (per minute of its running time), or 0 while it is too early to tell."""
    seconds = wave_active_seconds(run, now)
    return per_minute(finished_in_wave, seconds) if seconds >= MIN_PACE_SECONDS else 0.0


def paused_values(active: float, running_since: datetime | None, now: datetime) -> dict:
    """Return the run columns that a pause sets, given the clock read before (for a conditional UPDATE)."""
    running = (now - running_since).total_seconds() if running_since else 0.0
    return {"status": "paused", "active_seconds": (active or 0.0) + max(running, 0.0), "running_since": None}


def per_minute(count: int, seconds: float) -> float:
    """Return count per minute over seconds (0 when no time has passed)."""
    return count * 60.0 / seconds if seconds > 0 and count > 0 else 0.0


def seconds_left(remaining: int, rate_per_minute: float) -> int | None:
    """Return how long the remaining mailboxes take at this rate, or None when the rate is not known yet."""
    if remaining <= 0:
        return 0
    if rate_per_minute <= 0:
        return None
    return int(round(remaining / rate_per_minute * 60))
