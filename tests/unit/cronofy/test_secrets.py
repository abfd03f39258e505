"""No token, code or client secret in logs, exception strings or reprs."""

from __future__ import annotations

import logging
import traceback

import pytest

from services.cronofy import CronofyError, DelegatedRequest

from .conftest import CLIENT_SECRET

ACCESS = "acc_at_SHOULD_NEVER_LEAK_111"
REFRESH = "acc_rt_SHOULD_NEVER_LEAK_222"
CODE = "CODE_SHOULD_NEVER_LEAK_333"
SECRETS = (ACCESS, REFRESH, CODE, CLIENT_SECRET)


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_successful_calls_log_method_path_status_and_time_but_no_secret(cronofy, stub, caplog):
    caplog.set_level(logging.DEBUG)
    stub.reply(200, {"access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 3600})
    stub.reply(200, {"access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 3600})
    stub.reply(200, {"sub": "acc_1"})
    stub.reply(202)
    stub.reply(200)
    tokens = cronofy.exchange_code(CODE, "https://cb.example")
    cronofy.refresh_access_token(REFRESH)
    cronofy.userinfo(ACCESS)
    cronofy.request_delegated_access(ACCESS, [DelegatedRequest("a@x.example", "https://cb.example", "read_write")])
    cronofy.revoke(token=REFRESH)
    _assert_clean(caplog.text)
    _assert_clean(repr(tokens) + str(tokens) + repr(cronofy) + repr(cronofy.upstream))
    ours = [r.getMessage() for r in caplog.records if r.name == "services.cronofy"]
    assert ours[0].startswith("POST /oauth/token -> 200 in ")
    assert ours[2].startswith("GET /v1/userinfo -> 200 in ") and ours[2].endswith(" ms")


def test_errors_echoing_the_request_secrets_are_scrubbed(make_client, stub, caplog):
    caplog.set_level(logging.DEBUG)
    cronofy = make_client(max_attempts=1)
    stub.reply(400, {"error": "invalid_grant", "error_description": f"bad {CODE} for {CLIENT_SECRET}"})
    stub.reply(422, {"errors": {"token": [{"key": "errors.invalid", "description": f"{REFRESH} unknown"}]}})
    stub.reply(401, {"error": "invalid_token", "error_description": f"token {ACCESS} expired"})
    failures: list[CronofyError] = []
    for call in (
        lambda: cronofy.exchange_code(CODE, "https://cb.example"),
        lambda: cronofy.revoke(token=REFRESH),
        lambda: cronofy.userinfo(ACCESS),
    ):
        with pytest.raises(CronofyError) as caught:
            call()
        failures.append(caught.value)
    for error in failures:
        rendered = str(error) + repr(error) + repr(error.errors) + "".join(traceback.format_exception(error))
        _assert_clean(rendered)
        assert "[redacted]" in str(error) + repr(error.errors)
    _assert_clean(caplog.text)


def test_timeouts_and_retries_log_no_secret(make_client, stub, caplog):
    caplog.set_level(logging.DEBUG)
    cronofy = make_client(read_timeout=0.2)
    stub.reply(200, {"sub": "late"}, delay=1.0)
    stub.reply(503)
    stub.reply(503)
    with pytest.raises(CronofyError) as caught:
        cronofy.userinfo(ACCESS)
    _assert_clean(caplog.text + str(caught.value) + "".join(traceback.format_exception(caught.value)))
    assert "Retrying GET /v1/userinfo" in caplog.text
