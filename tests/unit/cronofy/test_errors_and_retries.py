"""Status → typed error mapping, Retry-After, the retry policy, timeouts and the budget hook."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from services.cronofy import (
    AccountLockedError,
    AuthenticationError,
    CronofyClient,
    ForbiddenError,
    InvalidGrantError,
    InvalidRequestError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitedError,
    RetryPolicy,
    UnavailableError,
    parse_retry_after,
    upstream_for,
)

TOKEN = "acc_at_MAPPING_0000"


@pytest.mark.parametrize(
    ("status", "body", "error_class", "error_key"),
    [
        (400, {"error": "invalid_grant"}, InvalidGrantError, "invalid_grant"),
        (400, {"error": "invalid_request"}, InvalidRequestError, "invalid_request"),
        (401, {"error": "invalid_client"}, AuthenticationError, "invalid_client"),
        (402, None, PaymentRequiredError, None),
        (403, None, ForbiddenError, None),
        (404, None, NotFoundError, None),
        (409, None, InvalidRequestError, None),
        (422, {"errors": {"email": [{"key": "errors.required", "description": "required"}]}},
         InvalidRequestError, "errors.required"),
        (423, None, AccountLockedError, None),
        (429, None, RateLimitedError, None),
        (500, "<h1>oops</h1>", UnavailableError, None),
        (504, None, UnavailableError, None),
    ],
)
def test_each_status_maps_to_its_typed_error(make_client, stub, status, body, error_class, error_key):
    cronofy = make_client(max_attempts=1)
    stub.reply(status, body)
    with pytest.raises(error_class) as caught:
        cronofy.userinfo(TOKEN)
    assert type(caught.value) is error_class
    assert (caught.value.status, caught.value.error_key) == (status, error_key)
    assert caught.value.description


def test_a_redirect_is_not_followed_and_is_unavailable(make_client, stub):
    stub.reply(302, headers={"Location": "http://127.0.0.1:9/elsewhere"})
    with pytest.raises(UnavailableError) as caught:
        make_client(max_attempts=1).userinfo(TOKEN)
    assert caught.value.status == 302 and len(stub.seen) == 1


def test_retry_after_in_seconds_is_exposed_when_not_retried(make_client, stub):
    stub.reply(429, {"error": "rate_limited"}, headers={"Retry-After": "7"})
    with pytest.raises(RateLimitedError) as caught:
        make_client(max_attempts=1).userinfo(TOKEN)
    assert caught.value.retry_after == 7.0


def test_retry_after_as_http_date_is_converted_to_seconds(make_client, stub):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    stub.reply(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    with pytest.raises(RateLimitedError) as caught:
        make_client(max_attempts=1).userinfo(TOKEN)
    assert 28 <= caught.value.retry_after <= 30


def test_garbage_retry_after_is_none():
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=time.time()) == 0.0


def test_429_is_retried_honouring_retry_after(cronofy, stub, sleeps):
    stub.reply(429, headers={"Retry-After": "3"})
    stub.reply(200, {"sub": "acc_1"})
    assert cronofy.userinfo(TOKEN).sub == "acc_1"
    assert sleeps.delays == [3.0] and len(stub.seen) == 2


def test_429_with_a_retry_after_beyond_max_delay_is_left_to_the_caller(cronofy, stub, sleeps):
    stub.reply(429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimitedError) as caught:
        cronofy.userinfo(TOKEN)
    assert caught.value.retry_after == 120.0
    assert sleeps.delays == [] and len(stub.seen) == 1


def test_429_without_retry_after_backs_off_exponentially(cronofy, stub, sleeps):
    stub.reply(429)
    stub.reply(429)
    stub.reply(200, {"sub": "acc_1"})
    cronofy.userinfo(TOKEN)
    assert sleeps.delays == [0.5, 1.0]


def test_get_is_retried_on_5xx_until_max_attempts(cronofy, stub, sleeps):
    for _ in range(3):
        stub.reply(503, "busy")
    stub.reply(200, {"sub": "never reached"})
    with pytest.raises(UnavailableError) as caught:
        cronofy.userinfo(TOKEN)
    assert caught.value.status == 503
    assert len(stub.seen) == 3 and sleeps.delays == [0.5, 1.0]


def test_max_attempts_one_leaves_everything_to_the_caller(make_client, stub, sleeps):
    stub.reply(503)
    stub.reply(200, {"sub": "acc_1"})
    with pytest.raises(UnavailableError):
        make_client(max_attempts=1).userinfo(TOKEN)
    assert len(stub.seen) == 1 and sleeps.delays == []


def test_4xx_is_never_retried(cronofy, stub, sleeps):
    stub.reply(401)
    with pytest.raises(AuthenticationError):
        cronofy.userinfo(TOKEN)
    assert len(stub.seen) == 1 and sleeps.delays == []


def test_full_jitter_stays_within_the_capped_exponential():
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0, random=lambda: 0.5)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert RetryPolicy(random=lambda: 0.0).backoff(3) == 0.0


def test_timeout_raises_unavailable_within_the_read_timeout(make_client, stub):
    cronofy = make_client(max_attempts=1, read_timeout=0.3)
    stub.reply(200, {"sub": "late"}, delay=2.0)
    started = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        cronofy.userinfo(TOKEN)
    assert time.monotonic() - started < 1.0
    assert caught.value.error_key == "timeout" and caught.value.status is None


def test_a_timed_out_get_is_retried(make_client, stub, sleeps):
    cronofy = make_client(read_timeout=0.3)
    stub.reply(200, {"sub": "late"}, delay=1.0)
    stub.reply(200, {"sub": "acc_2"})
    assert cronofy.userinfo(TOKEN).sub == "acc_2"
    assert sleeps.delays == [0.5]


def test_refused_connection_is_unavailable_and_an_exchange_may_be_resent(sleeps):
    port = _closed_port()
    upstream = upstream_for("us", client_id="c", client_secret="s", sandbox_url=f"http://127.0.0.1:{port}")
    retry = RetryPolicy(max_attempts=2, sleep=sleeps, random=lambda: 1.0)
    with CronofyClient(upstream, retry=retry) as cronofy, pytest.raises(UnavailableError) as caught:
        cronofy.exchange_code("CODE_never_sent", "https://cb.example")
    assert caught.value.error_key == "connection_error"
    # Nothing reached the upstream, so resending the single-use code was safe.
    assert sleeps.delays == [0.5]


def test_malformed_json_body_on_200_is_unavailable(cronofy, stub):
    stub.reply(200, "{not json", headers={"Content-Type": "application/json"})
    with pytest.raises(UnavailableError) as caught:
        cronofy.userinfo(TOKEN)
    assert (caught.value.status, caught.value.error_key) == (200, "malformed_response")


def test_json_that_is_not_an_object_is_unavailable(cronofy, stub):
    stub.reply(200, ["a", "list"])
    with pytest.raises(UnavailableError, match="not an object"):
        cronofy.userinfo(TOKEN)


def test_before_request_runs_before_every_attempt(make_client, stub):
    calls: list[int] = []
    cronofy = make_client(before_request=lambda: calls.append(len(stub.seen)))
    stub.reply(500)
    stub.reply(200, {"sub": "acc_1"})
    stub.reply(200, {"access_token": "t"})
    cronofy.userinfo(TOKEN)
    cronofy.exchange_code("CODE", "https://cb.example")
    # Called before each HTTP request (seen count at call time), retries and token grants included.
    assert calls == [0, 1, 2]


def test_a_blocking_before_request_delays_the_request(make_client, stub):
    cronofy = make_client(before_request=lambda: time.sleep(0.2))
    stub.reply(200, {"sub": "acc_1"})
    started = time.monotonic()
    cronofy.userinfo(TOKEN)
    assert time.monotonic() - started >= 0.2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
