"""Contract: callback delivery — signature (§3.11), retries with backoff, surviving a restart."""

import base64
import hashlib
import hmac
import json
import time

from sqlalchemy import String, column, func, inspect, select, table

from tests.contract.sandbox_support import (CallbackReceiver, connect_service_account, http, members,
                                            request_access, token_request, wait_for_events)
from tests.plugins.sandbox_server import start_sandbox


def _valid(secret, raw, header):
    expected = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(value, expected) for value in header.split(","))


def test_documented_hmac_test_vector():
    from sandbox.secrets_util import hmac_header

    header = hmac_header(b'{"example":"well-known"}', ["pDY0Oi7TJSP2hfNmZNkm5"])
    assert header == "6r2/HjBkqymGegX0wOfifieeUXbbHwtV/LohHS+jv6c="
    assert _valid("pDY0Oi7TJSP2hfNmZNkm5", b'{"example":"well-known"}', header)


def test_received_callbacks_verify_like_the_sdk_helpers(sandbox, sa_token, callback_receiver):
    import pycronofy

    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], {"email": email, "scope": "read_events",
                                                       "callback_url": callback_receiver.callback_url()})
    received = callback_receiver.wait_for(1)[0]
    header = received["headers"]["Cronofy-Hmac-Sha256"]
    sdk = pycronofy.Client(client_id=sandbox.client_id, client_secret=sandbox.client_secret)
    assert sdk.hmac_valid(header, received["raw"].decode())
    assert not sdk.hmac_valid(header, received["raw"].decode() + " ")


def test_failing_receiver_gets_retries_with_growing_gaps(sandbox, sa_token, callback_receiver):
    callback_receiver.statuses = [500, 503, 404]
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], {"email": email, "scope": "read_events", "state": "retry",
                                                       "callback_url": callback_receiver.callback_url()})
    attempts = callback_receiver.wait_for(4)
    assert [a["status"] for a in attempts] == [500, 503, 404, 200]
    assert len({a["raw"] for a in attempts}) == 1
    gaps = [b["at"] - a["at"] for a, b in zip(attempts, attempts[1:])]
    # Backoff doubles from 0.05 s with ±20 % jitter: each gap is at least its minimum.
    assert all(gap >= 0.05 * 2 ** i * 0.8 for i, gap in enumerate(gaps))
    delivered = wait_for_events(sandbox, lambda e: "attempt 4; delivered" in e["detail"], kind="callback")
    assert delivered and delivered[0]["status"] == 200


def test_delivery_gives_up_after_the_maximum_attempts(tmp_path):
    receiver = CallbackReceiver()
    receiver.statuses = [500] * 10
    server = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", CALLBACK_MAX_ATTEMPTS=3,
                           CALLBACK_RETRY_BASE=0.02)
    try:
        tokens = connect_service_account(server)
        email = members(server, domain="acme.example", kind="user", trait="none")[0]
        request_access(server, tokens["access_token"], {"email": email, "scope": "read_events",
                                                        "callback_url": receiver.callback_url()})
        receiver.wait_for(3)
        wait_for_events(server, lambda e: "failed" in e["detail"], kind="callback")
        time.sleep(0.3)
        counts = http().get(f"{server.url}/sandbox/admin/callbacks.json").json()["callbacks"]
    finally:
        server.stop()
        receiver.stop()
    assert len(receiver.received) == 3
    assert counts == {"failed": 1}


def test_unreachable_receiver_is_retried(sandbox, sa_token):
    receiver = CallbackReceiver()
    url = receiver.callback_url("gone")
    receiver.stop()  # nothing listens on that port any more
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], {"email": email, "scope": "read_events", "callback_url": url})
    failures = wait_for_events(sandbox, lambda e: "ConnectionError" in e["detail"], count=2, kind="callback")
    assert len(failures) >= 2 and all(e["status"] is None for e in failures)


def test_pending_callbacks_are_delivered_after_a_restart(tmp_path):
    receiver = CallbackReceiver()
    database = f"sqlite:///{tmp_path / 'sb.sqlite'}"
    first = start_sandbox(database, CALLBACK_DELAY="2.0-2.2")
    try:
        tokens = connect_service_account(first)
        emails = members(first, 3, domain="acme.example", kind="user", trait="none")
        batch = [{"email": e, "scope": "read_events", "state": f"s{i}", "callback_url": receiver.callback_url(f"r{i}")}
                 for i, e in enumerate(emails)]
        assert request_access(first, tokens["access_token"], {"service_account_authorizations": batch}).ok
    finally:
        first.stop()
    assert receiver.received == []
    second = start_sandbox(database, CALLBACK_DELAY="2.0-2.2")
    try:
        states = sorted(json.loads(r["raw"])["authorization"]["state"] for r in receiver.wait_for(3, timeout=10))
        time.sleep(0.3)
    finally:
        second.stop()
        receiver.stop()
    assert states == ["s0", "s1", "s2"]
    assert len(receiver.received) == 3


def test_several_client_secrets_give_one_signature_each(tmp_path):
    receiver = CallbackReceiver()
    server = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", CLIENT_SECRET="old-secret,new-secret")
    try:
        tokens = connect_service_account(server, client_secret="new-secret")
        email = members(server, domain="acme.example", kind="user", trait="none")[0]
        request_access(server, tokens["access_token"], {"email": email, "scope": "read_events",
                                                        "callback_url": receiver.callback_url()})
        received = receiver.wait_for(1)[0]
    finally:
        server.stop()
        receiver.stop()
    header = received["headers"]["Cronofy-Hmac-Sha256"]
    assert len(header.split(",")) == 2
    assert _valid("old-secret", received["raw"], header) and _valid("new-secret", received["raw"], header)


def test_two_sandboxes_on_one_database_deliver_each_callback_once(tmp_path):
    receiver = CallbackReceiver()
    database = f"sqlite:///{tmp_path / 'sb.sqlite'}"
    first = start_sandbox(database, CALLBACK_DELAY="0.2-0.4")
    second = start_sandbox(database, CALLBACK_DELAY="0.2-0.4")
    try:
        tokens = connect_service_account(first)
        emails = members(first, 30, domain="acme.example", kind="user")
        batch = [{"email": e, "scope": "read_events", "state": f"s{i}", "callback_url": receiver.callback_url(f"{i}")}
                 for i, e in enumerate(emails)]
        assert request_access(second, tokens["access_token"], {"service_account_authorizations": batch}).ok
        receiver.wait_for(30)
        # Both share the database, so the log holds every attempt of either.
        attempts = wait_for_events(first, count=30, kind="callback")
        time.sleep(0.5)
        attempts = first.events(kind="callback", limit=100)
    finally:
        first.stop()
        second.stop()
        receiver.stop()
    states = [json.loads(r["raw"])["authorization"]["state"] for r in receiver.received]
    assert sorted(states) == sorted(f"s{i}" for i in range(30))
    assert len(attempts) == 30 and len(receiver.received) == 30


def test_benchmark_mode_delivers_within_milliseconds(tmp_path, callback_receiver):
    server = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", BENCHMARK=True, CALLBACK_DELAY=None)
    try:
        assert server.set_limits()["callback_delay"] == "0.005-0.05"
        tokens = connect_service_account(server)
        email = members(server, domain="acme.example", kind="user", trait="none")[0]
        started = time.monotonic()
        request_access(server, tokens["access_token"], {"email": email, "scope": "read_events",
                                                        "callback_url": callback_receiver.callback_url()})
        callback_receiver.wait_for(1)
    finally:
        server.stop()
    assert time.monotonic() - started < 1.0


def _stored_anywhere(engine, secret):
    """Return (table, column) for every text column of every table of the database that contains secret."""
    found, schema = [], inspect(engine)
    with engine.connect() as connection:
        for name in schema.get_table_names():
            for info in schema.get_columns(name):
                if not isinstance(info["type"], String):
                    continue
                text = column(info["name"])
                holding = text.contains(secret, autoescape=True)
                if connection.scalar(select(func.count()).select_from(table(name, text)).where(holding)):
                    found.append((name, info["name"]))
    return found


def _stored_bodies(engine):
    body = column("body")
    with engine.connect() as connection:
        return [json.loads(raw) for raw in connection.scalars(select(body).select_from(table("callbacks", body)))]


def _wait_for_counts(server, expected, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        counts = http().get(f"{server.url}/sandbox/admin/callbacks.json").json()["callbacks"]
        if counts == expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def test_no_code_stays_in_clear_once_its_callback_is_delivered_given_up_or_dropped(tmp_path):
    good, failing = CallbackReceiver(), CallbackReceiver()
    failing.statuses = [500] * 10
    server = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", CALLBACK_MAX_ATTEMPTS=2, CALLBACK_RETRY_BASE=0.02)
    try:
        tokens = connect_service_account(server)
        emails = members(server, 3, domain="acme.example", kind="user", trait="none")
        targets = {"s0": good.callback_url("a"), "s1": good.callback_url("b"), "s2": failing.callback_url("c")}
        batch = [{"email": email, "scope": "read_events", "state": state, "callback_url": url}
                 for email, (state, url) in zip(emails, targets.items())]
        assert request_access(server, tokens["access_token"], {"service_account_authorizations": batch}).ok
        delivered = [json.loads(r["raw"])["authorization"] for r in good.wait_for(2)]
        given_up = json.loads(failing.wait_for(2)[0]["raw"])["authorization"]
        _wait_for_counts(server, {"delivered": 2, "failed": 1})
        first = delivered[0]
        exchanged = token_request(server, grant_type="authorization_code", code=first["code"],
                                  redirect_uri=targets[first["state"]])
        server.set_faults(callback_failure_rate=1.0)  # a lost callback: its code was never sent
        lost = {"email": emails[0], "scope": "read_events", "state": "s3", "callback_url": good.callback_url("d")}
        assert request_access(server, tokens["access_token"], lost).ok
        counts = _wait_for_counts(server, {"delivered": 2, "failed": 1, "dropped": 1})
        server.events(limit=500)  # the event log is written before its page answers
        engine = server.app.extensions["sandbox"].engine
        codes = [auth["code"] for auth in [*delivered, given_up]]
        leaks = {code: _stored_anywhere(engine, code) for code in codes}
        kept = _stored_bodies(engine)
    finally:
        server.stop()
        good.stop()
        failing.stop()
    assert counts == {"delivered": 2, "failed": 1, "dropped": 1}
    assert exchanged.status_code == 200, exchanged.text  # the code still works once its callback is settled
    assert leaks == {code: [] for code in codes}
    assert sorted(body["authorization"]["state"] for body in kept) == ["s0", "s1", "s2", "s3"]
    assert all("code" not in body["authorization"] for body in kept)
