"""Calls with a delegated account token: calendars, free/busy, profile revocation."""

from __future__ import annotations

from datetime import date

import pytest

from services.cronofy import AccountLockedError, UnavailableError

ACC_TOKEN = "acc_at_BEARER_5678"


def test_list_calendars(cronofy, stub):
    stub.reply(200, {"calendars": [
        {"calendar_id": "cal_1", "calendar_name": "Alice", "profile_id": "pro_1", "profile_name": "alice@x.example",
         "provider_name": "google", "calendar_readonly": False, "calendar_deleted": False, "calendar_primary": True},
        {"calendar_name": "no id"},
    ]})
    [calendar] = cronofy.list_calendars(ACC_TOKEN)
    assert stub.seen[0].headers["Authorization"] == f"Bearer {ACC_TOKEN}"
    assert (calendar.calendar_id, calendar.calendar_primary, calendar.calendar_readonly) == ("cal_1", True, False)


def test_list_calendars_of_a_disconnected_account_is_locked(cronofy, stub):
    stub.reply(423, {})
    with pytest.raises(AccountLockedError) as caught:
        cronofy.list_calendars(ACC_TOKEN)
    assert caught.value.status == 423


def test_free_busy_sends_the_dates_and_follows_pages(cronofy, stub):
    stub.reply(200, {
        "pages": {"current": 1, "total": 2, "next_page": f"{stub.url}/v1/free_busy/pages/p2"},
        "free_busy": [{"calendar_id": "cal_1", "start": "2025-01-02T09:00:00Z", "end": "2025-01-02T10:00:00Z",
                       "free_busy_status": "busy"}],
    })
    stub.reply(200, {"pages": {"current": 2, "total": 2}, "free_busy": [
        {"calendar_id": "cal_1", "start": "2025-01-03T09:00:00Z", "end": "2025-01-03T09:30:00Z",
         "free_busy_status": "tentative"},
    ]})
    periods = cronofy.free_busy(ACC_TOKEN, date(2025, 1, 2), "2025-01-04")
    first, second = stub.seen
    assert first.path == "/v1/free_busy"
    assert first.query == {"from": ["2025-01-02"], "to": ["2025-01-04"], "tzid": ["Etc/UTC"]}
    assert second.path == "/v1/free_busy/pages/p2" and second.headers["Authorization"] == f"Bearer {ACC_TOKEN}"
    assert [p.free_busy_status for p in periods] == ["busy", "tentative"]


def test_free_busy_refuses_to_follow_a_page_on_another_host(cronofy, stub):
    stub.reply(200, {"pages": {"next_page": "http://127.0.0.2:9/steal"}, "free_busy": []})
    with pytest.raises(UnavailableError, match="another host"):
        cronofy.free_busy(ACC_TOKEN, "2025-01-02", "2025-01-03")
    assert len(stub.seen) == 1


def test_revoke_profile_expects_202_and_sends_no_body(cronofy, stub):
    stub.reply(202)
    cronofy.revoke_profile(ACC_TOKEN, "pro_Zp3k")
    sent = stub.seen[0]
    assert (sent.method, sent.path, sent.body) == ("POST", "/v1/profiles/pro_Zp3k/revoke", b"")
    assert sent.headers["Authorization"] == f"Bearer {ACC_TOKEN}"
