"""The paused and wave banners say what happened once and what to do once (the reason no longer repeats it)."""

from __future__ import annotations

import re

from extensions import db
from services.engine import run_clock
from tests.web.test_runs import add_mailboxes, admin, connection, set_attempts, start  # noqa: F401 - fixtures


def _banner(client, organization_id, run_id) -> str:
    html = client.get(f"/orgs/{organization_id}/runs/{run_id}").get_data(as_text=True)
    found = re.search(r'data-testid="wave-banner">(.*?)</div>', html, re.DOTALL)
    return " ".join(found.group(1).split())


def test_a_threshold_pause_says_resume_once(client, admin, connection):
    add_mailboxes(admin.organization, 10)
    run = start(admin.organization, connection, admin)
    set_attempts(run, "failed", 4, error_key="not_found")
    run_clock.set_status(run, "paused")
    run.pause_reason = "Canary wave: 4 of 10 failed (40%), above your 20% threshold."
    db.session.commit()
    banner = _banner(client, admin.organization_id, run.id)
    assert "above your 20% threshold." in banner
    assert banner.lower().count("resume") == 1 and banner.lower().count("cancel") == 1
    assert "Look at the failures below" in banner


def test_a_pause_without_failures_does_not_point_at_failures(client, admin, connection):
    add_mailboxes(admin.organization, 3)
    run = start(admin.organization, connection, admin)
    run_clock.set_status(run, "paused")
    run.pause_reason = "Paused by an administrator."
    db.session.commit()
    banner = _banner(client, admin.organization_id, run.id)
    assert "failures" not in banner and banner.lower().count("resume") == 1


def test_a_finished_wave_says_confirm_once(client, admin, connection):
    add_mailboxes(admin.organization, 10)
    run = start(admin.organization, connection, admin)
    run_clock.set_status(run, "awaiting_confirmation")
    run.pause_reason = "Canary wave: 0 of 2 failed (0%)."
    db.session.commit()
    banner = _banner(client, admin.organization_id, run.id)
    assert banner.count("Confirm") == 2  # the sentence and its button
    assert banner.count("the rest") == 1
