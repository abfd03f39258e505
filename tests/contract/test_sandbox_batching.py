"""Contract: batched account creation, batched delivery and the buffered event log keep the protocol."""

import json
import socket
import threading

import pytest
from sqlalchemy import select

from tests.contract.sandbox_support import (CallbackReceiver, connect_service_account, http, members, request_access,
                                            token_request, wait_for_events)
from tests.plugins.sandbox_server import start_sandbox


@pytest.fixture
def fresh(tmp_path):
    """A sandbox of its own, where no delegated account exists yet, and a callback receiver."""
    server = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}")
    receiver = CallbackReceiver()
    yield server, receiver
    server.stop()
    receiver.stop()


def _entry(receiver, email, name):
    return {"email": email, "callback_url": receiver.callback_url(name), "scope": "read_events", "state": name}


def _by_state(received):
    return {json.loads(r["raw"])["authorization"]["state"]: r for r in received}


def _exchange(server, received):
    code = json.loads(received["raw"])["authorization"]["code"]
    return token_request(server, grant_type="authorization_code", code=code, redirect_uri=received["url"])


def test_a_batch_of_existing_new_and_failing_mailboxes_gets_the_right_outcomes(fresh):
    server, receiver = fresh
    tokens = connect_service_account(server)["access_token"]
    known, new_one, new_two = members(server, 3, domain="acme.example", kind="user", trait="none")
    suspended = members(server, domain="acme.example", kind="user", trait="suspended")[0]
    assert request_access(server, tokens, _entry(receiver, known, "first")).status_code == 202
    first = _exchange(server, receiver.wait_for(1)[0]).json()
    batch = [_entry(receiver, known.upper(), "known"), _entry(receiver, new_one, "new1"),
             _entry(receiver, suspended, "suspended"), _entry(receiver, "nobody@acme.example", "nobody"),
             _entry(receiver, new_two, "new2")]
    assert request_access(server, tokens, {"service_account_authorizations": batch}).status_code == 202
    received = _by_state(receiver.wait_for(6))
    answers = {name: _exchange(server, received[name]).json() for name in ("known", "new1", "new2")}
    assert answers["known"]["sub"] == first["sub"]
    assert len({answers[name]["sub"] for name in answers}) == 3
    assert [answers[name]["linking_profile"]["profile_name"] for name in ("new1", "new2")] == [new_one, new_two]
    assert json.loads(received["suspended"]["raw"])["authorization"]["error"] == "mailbox_suspended"
    assert json.loads(received["nobody"]["raw"])["authorization"]["error"] == "not_found"
    assert _exchange(server, received["new1"]).json() == {"error": "invalid_grant"}


def test_two_concurrent_batches_for_the_same_mailboxes_share_one_account_each(fresh):
    server, receiver = fresh
    tokens = connect_service_account(server)["access_token"]
    emails = members(server, 12, domain="acme.example", kind="user", trait="none")
    start, statuses = threading.Barrier(2), []

    def send(side):
        batch = [_entry(receiver, email, f"{side}{i}") for i, email in enumerate(emails)]
        start.wait()
        statuses.append(request_access(server, tokens, {"service_account_authorizations": batch}).status_code)

    threads = [threading.Thread(target=send, args=(side,)) for side in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    received = _by_state(receiver.wait_for(24))
    subs = {i: {_exchange(server, received[f"{side}{i}"]).json()["sub"] for side in "ab"} for i in range(12)}
    assert statuses == [202, 202]
    assert all(len(found) == 1 for found in subs.values())
    assert len({sub for found in subs.values() for sub in found}) == 12


def test_a_request_that_loses_the_race_reuses_the_winners_account(fresh, monkeypatch):
    from sandbox import accounts
    from sandbox.models import Member, ServiceAccount

    server, _ = fresh
    connect_service_account(server)
    email = members(server, domain="acme.example", kind="user", trait="none")[0]
    sessions = server.app.extensions["sandbox"].Session
    with sessions() as db:
        sa = db.scalars(select(ServiceAccount)).one()
        member = db.scalars(select(Member).where(Member.email == email)).one()
        winner = accounts.upsert_accounts(db, sa, [(member, "read_events")])
        db.commit()
    looked_up = accounts._accounts_of
    calls = []

    def late_lookup(db, client_id, member_ids):
        # The first lookup happens before the winner committed: it finds nothing.
        calls.append(member_ids)
        return {} if len(calls) == 1 else looked_up(db, client_id, member_ids)

    monkeypatch.setattr(accounts, "_accounts_of", late_lookup)
    with sessions() as db:
        loser = accounts.upsert_accounts(db, sa, [(member, "read_free_busy")])
        db.commit()
        scope = db.scalars(select(accounts.ACCOUNTS.c.scope).where(accounts.ACCOUNTS.c.id == winner[member.id])).one()
    assert loser == winner and len(calls) == 2
    assert scope == "read_free_busy"


def test_events_are_visible_right_after_the_request_and_survive_a_stop(tmp_path):
    database = f"sqlite:///{tmp_path / 'sb.sqlite'}"
    # The background flusher never runs on its own here: only readers and stopping write events.
    first = start_sandbox(database, EVENT_FLUSH_SECONDS=3600)
    try:
        http().get(f"{first.url}/v1/userinfo")
        assert first.events(path="/v1/userinfo", limit=1)[0]["status"] == 401
        http().get(f"{first.url}/v1/last-before-stop")
    finally:
        first.stop()
    second = start_sandbox(database, EVENT_FLUSH_SECONDS=3600)
    try:
        assert [e["status"] for e in second.events(path="/v1/last-before-stop")] == [404]
    finally:
        second.stop()


def test_callbacks_are_not_redirected_and_carry_the_usual_headers(sandbox, sa_token, callback_receiver):
    callback_receiver.statuses = [302]
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email, "redirected"))
    first, second = callback_receiver.wait_for(2)
    assert first["path"] == second["path"] and second["status"] == 200
    headers = second["headers"]
    assert (headers["User-Agent"], headers["Accept"], headers["Connection"]) == ("Cronofy-Sandbox", "*/*", "keep-alive")
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(headers["Content-Length"]) == len(second["raw"])
    assert wait_for_events(sandbox, lambda e: "attempt 1; pending; HTTP 302" in e["detail"], kind="callback")


def test_a_receiver_that_never_answers_is_logged_as_a_read_timeout(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    server = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", CALLBACK_TIMEOUT=0.2, CALLBACK_MAX_ATTEMPTS=2)
    try:
        tokens = connect_service_account(server)["access_token"]
        email = members(server, domain="acme.example", kind="user", trait="none")[0]
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/callbacks/delegated/x?mbx=1"
        request_access(server, tokens, {"email": email, "callback_url": url, "scope": "read_events"})
        failed = wait_for_events(server, lambda e: "failed" in e["detail"], kind="callback")
    finally:
        server.stop()
        listener.close()
    assert failed and failed[0]["detail"] == "code; attempt 2; failed; ReadTimeout"
