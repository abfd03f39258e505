"""The run page's summary, tab badges and rows come from one snapshot, on the page and in its polling fragment;
the pace shown follows the current wave while running, and a finished run shows its average over its active time.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event, select, update

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.base import utcnow
from tests.web.test_runs import add_mailboxes, admin, connection, set_attempts, start  # noqa: F401 - fixtures


def summary_of(html: str) -> dict[str, int]:
    """The summary's counts (the <dl> of the progress part)."""
    return {k: int(v.replace(",", "")) for k, v in re.findall(r'data-count="(\w+)">([\d,]+)<', html)}


def badges_of(html: str) -> dict[str, int]:
    """The tab badges (a status without a badge has none)."""
    return {k: int(v.replace(",", "")) for k, v in re.findall(r'data-badge="(\w+)">([\d,]+)<', html)}


def rows_of(html: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for status in re.findall(r'<tr data-status="(\w+)">', html):
        found[status] = found.get(status, 0) + 1
    return found


def assert_one_story(html: str) -> dict[str, int]:
    """Summary == badges == rows (every row fits on one page here), and say what they agree on."""
    summary = {k: v for k, v in summary_of(html).items() if v}
    badges = badges_of(html)
    assert badges.pop("all") == sum(summary.values())
    assert summary == badges == rows_of(html)
    return summary


def mid_way(organization, connection, admin):
    add_mailboxes(organization, 37)
    run = start(organization, connection, admin)
    set_attempts(run, "authorized", 13)
    set_attempts(run, "failed", 3, error_key="not_found")
    set_attempts(run, "requested", 18)
    set_attempts(run, "sending", 2)
    return run  # and one queued


def test_summary_badges_and_rows_agree_on_the_page_and_in_the_fragment(client, admin, connection):
    run = mid_way(admin.organization, connection, admin)
    base = f"/orgs/{admin.organization_id}/runs/{run.id}"
    expected = {"authorized": 13, "failed": 3, "requested": 18, "sending": 2, "queued": 1}
    assert assert_one_story(client.get(base).get_data(as_text=True)) == expected
    fragment = client.get(f"{base}/progress").get_data(as_text=True)
    assert "<html" not in fragment
    assert assert_one_story(fragment) == expected


def test_the_fragment_brings_new_badges_and_rows_with_the_new_summary(client, admin, connection):
    # The walk-through's finding: while the summary moved on, the badges and every row kept their first state.
    run = mid_way(admin.organization, connection, admin)
    base = f"/orgs/{admin.organization_id}/runs/{run.id}"
    client.get(base)
    db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.status == "requested")
                       .values(status="authorized", live_mailbox_id=None, finished_at=utcnow()))
    db.session.commit()
    fragment = client.get(f"{base}/progress").get_data(as_text=True)
    assert assert_one_story(fragment) == {"authorized": 31, "failed": 3, "sending": 2, "queued": 1}
    assert 'data-testid="outcomes"' in fragment and 'data-testid="outcome-filters"' in fragment


def test_the_fragment_keeps_the_tab_and_page_it_polls_for(client, admin, connection):
    run = mid_way(admin.organization, connection, admin)
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}?status=failed").get_data(as_text=True)
    polled = re.search(r'data-url="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert polled.endswith("/progress?status=failed")
    fragment = client.get(polled).get_data(as_text=True)
    assert rows_of(fragment) == {"failed": 3} and badges_of(fragment)["failed"] == 3


def test_the_page_reads_the_attempts_in_one_statement(app, client, admin, connection):
    run = mid_way(admin.organization, connection, admin)
    client.get(f"/orgs/{admin.organization_id}/runs/{run.id}")  # the first request also opens the connection
    base = f"/orgs/{admin.organization_id}/runs/{run.id}"
    for url in (base, f"{base}/progress"):
        statements: list[str] = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        reads = [s for s in statements if "authorization_attempts" in s]
        assert len(reads) == 1, reads  # counts, causes, pace and rows: one snapshot


# The pace ------------------------------------------------------------------------------------------------------


def rate_line(html: str) -> str:
    return " ".join(re.search(r'data-testid="run-rate">(.*?)</p>', html, re.S).group(1).split())


def test_a_finished_run_shows_its_average_over_its_active_time(client, admin, connection):
    add_mailboxes(admin.organization, 60)
    run = start(admin.organization, connection, admin)
    set_attempts(run, "authorized", 60)
    finished = utcnow() - timedelta(hours=5)  # looked at long after it ended: no "0 mailboxes a minute"
    run.status, run.finished_at, run.running_since, run.active_seconds = "completed", finished, None, 600.0
    db.session.commit()
    line = rate_line(client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True))
    assert "Average rate: 6 mailboxes a minute" in line and "about 10 min" in line
    assert " 0 mailboxes a minute" not in line


def test_while_running_the_time_left_follows_the_current_wave(client, admin, connection):
    add_mailboxes(admin.organization, 110)
    run = start(admin.organization, connection, admin, canary_size=10)
    now = utcnow()
    # The canary took 10 minutes of running, then the run waited an hour for a confirmation; wave 2 has run for
    # two minutes and finished 40 mailboxes: 20 a minute, so the 60 left take about 3 minutes.
    db.session.execute(update(AuthorizationRun).where(AuthorizationRun.id == run.id).values(
        current_wave=2, active_seconds=600.0, running_since=now - timedelta(minutes=2),
        wave_started_at=now - timedelta(minutes=2), wave_active_offset=600.0))
    set_attempts(run, "authorized", 50)
    db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.wave == 1)
                       .values(finished_at=now - timedelta(minutes=65)))
    db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.wave == 2,
                                                          AuthorizationAttempt.status == "authorized")
                       .values(finished_at=now - timedelta(minutes=1)))
    db.session.commit()
    line = rate_line(client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True))
    assert "Rate in this wave: 20 mailboxes a minute" in line and "Time left: about 3 min" in line


def test_a_pause_stops_the_clock(client, admin, connection):
    from tests.web.test_runs import act

    add_mailboxes(admin.organization, 2)
    run = start(admin.organization, connection, admin)
    run.running_since = utcnow() - timedelta(minutes=5)
    db.session.commit()
    act(client, admin, run, "pause")
    db.session.refresh(run)
    assert run.running_since is None and 299 <= run.active_seconds <= 320
    act(client, admin, run, "resume")
    db.session.refresh(run)
    assert run.status == "running" and run.running_since is not None and run.active_seconds < 320


def test_the_engines_own_pause_stops_the_clock(admin, connection):
    from services.engine import batch_outcomes

    add_mailboxes(admin.organization, 1)
    run = start(admin.organization, connection, admin)
    run.running_since = utcnow() - timedelta(minutes=3)
    db.session.commit()
    batch_outcomes.pause(run.id, "Reconnect first.")
    paused = db.session.execute(select(AuthorizationRun).where(AuthorizationRun.id == run.id)
                                .execution_options(populate_existing=True)).scalar_one()
    assert paused.status == "paused" and paused.running_since is None and 179 <= paused.active_seconds <= 200
