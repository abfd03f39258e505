"""Contract: per-client rate limits answering 429 (§5)."""

import time

from sandbox.ratelimit import RateLimiter
from tests.contract.sandbox_support import http, token_request


def _burst(sandbox, count, **credentials):
    session = http()
    body = {"client_id": credentials.get("client_id", sandbox.client_id),
            "client_secret": credentials.get("client_secret", sandbox.client_secret),
            "grant_type": "refresh_token", "refresh_token": "unknown"}
    return [session.post(f"{sandbox.url}/oauth/token", json=body) for _ in range(count)]


def _start_of_second():
    time.sleep(1 - time.time() % 1 + 0.01)


def _in_one_clock_second(action, attempts=8):
    """Run action at the start of a clock second, retrying until it finishes within that second.

    Fixed windows follow the clock, so only a run that fits in one second shows the per-second limit
    exactly, however loaded the machine is.
    """
    for _ in range(attempts):
        _start_of_second()
        second = int(time.time())
        result = action()
        if int(time.time()) == second:
            return result
        time.sleep(1.1)  # let the window that the slow run spilled into pass
    raise AssertionError("the machine is too slow to fit a burst in one second")


def _not_near_a_minute_boundary():
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def test_per_second_limit_answers_429_with_a_json_body(sandbox):
    sandbox.set_limits(per_second=5, per_minute=1000)
    statuses = _in_one_clock_second(lambda: [r.status_code for r in _burst(sandbox, 8)])
    assert statuses[:5] == [400] * 5
    assert statuses[5:] == [429] * 3
    limited = _burst(sandbox, 1)[0]
    assert limited.json()["error"] == "too_many_requests"
    assert "Retry-After" not in limited.headers
    time.sleep(1.05)
    assert _burst(sandbox, 1)[0].status_code == 400


def test_per_minute_limit_answers_429(sandbox):
    _not_near_a_minute_boundary()
    sandbox.set_limits(per_second=1000, per_minute=6)
    statuses = [r.status_code for r in _burst(sandbox, 8)]
    assert statuses.count(429) >= 2 and statuses[0] == 400


def test_limits_are_per_client(sandbox):
    other = http().post(f"{sandbox.url}/sandbox/admin/clients", json={"allow_loopback": True}).json()
    sandbox.set_limits(per_second=3, per_minute=1000)
    mine, theirs = _in_one_clock_second(lambda: ([r.status_code for r in _burst(sandbox, 5)],
                                                 [r.status_code for r in _burst(sandbox, 3, **other)]))
    assert 429 in mine
    assert theirs == [400, 400, 400]


def test_bearer_requests_count_for_the_token_client(sandbox, sa_token):
    sandbox.set_limits(per_second=3, per_minute=1000)
    session = http()
    headers = {"Authorization": f"Bearer {sa_token['access_token']}"}

    def mixed():
        statuses = [session.get(f"{sandbox.url}/v1/userinfo", headers=headers).status_code for _ in range(3)]
        return statuses + [token_request(sandbox, grant_type="refresh_token", refresh_token="x").status_code]
    assert _in_one_clock_second(mixed) == [200, 200, 200, 429]


def test_retry_after_header_can_be_switched_on(sandbox):
    sandbox.set_limits(per_second=1, per_minute=1000, retry_after=True)
    limited = _in_one_clock_second(lambda: _burst(sandbox, 2))[1]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"


def test_sliding_window_counts_the_last_second_not_the_clock_second(sandbox):
    sandbox.set_limits(per_second=4, per_minute=1000, window="sliding")
    for _ in range(8):
        time.sleep(1 - time.time() % 1 + 0.6)  # start late in a clock second so the next one begins mid-test
        started = time.time()
        first = [r.status_code for r in _burst(sandbox, 4)]
        time.sleep(max(0.0, started + 0.5 - time.time()))
        second = [r.status_code for r in _burst(sandbox, 2)]
        if time.time() - started < 0.95 and int(time.time()) != int(started):
            break
        time.sleep(1.1)  # too slow to prove anything: let the window empty and try again
    assert first == [400] * 4
    assert second == [429, 429]


def test_default_limits_are_the_documented_ones(tmp_path):
    """With nothing configured the sandbox allows 50 requests a second and 500 a minute per client.

    The counting is checked at fixed instants on the server's own limiter, so a loaded machine that
    cannot send 60 requests inside one clock second proves nothing less; the HTTP 429 itself is
    covered by the bursts above.
    """
    from tests.plugins.sandbox_server import start_sandbox

    other = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", RATE_PER_SECOND=None, RATE_PER_MINUTE=None,
                          DELIVERY_THREAD=False)
    try:
        limits = other.set_limits()
        live = other.app.extensions["sandbox"].settings.get("limits")
    finally:
        other.stop()
    assert (limits["per_second"], limits["per_minute"]) == (50, 500)
    limiter = RateLimiter()
    one_second = [limiter.hit("client", live, now=1_000_020.5) for _ in range(60)]
    assert one_second.count(None) == 50
    assert all(wait == 0.5 for wait in one_second[50:])
    limiter = RateLimiter()
    # 20 a second for 30 seconds: never over the per-second limit, over the per-minute one after 500.
    one_minute = [limiter.hit("client", live, now=1_000_020.0 + n / 20) for n in range(600)]
    assert one_minute.index(next(w for w in one_minute if w is not None)) == 500
    assert limiter.hit("another client", live, now=1_000_049.0) is None
