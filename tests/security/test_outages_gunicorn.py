"""Outages under the real gunicorn: a database stopped as a crash would, a Redis killed.

While PostgreSQL was down, signed-in pages were gunicorn's bare "Internal Server Error" and sign-in a
generic 500; while Redis was down nobody could sign in. These start the console under gunicorn on a
PostgreSQL (or Redis) server of their own, take that server away and look at what people, probes and
Cronofy's callbacks get, then bring it back.
"""

from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor

import requests

from tests import factories
from tests.factories import DEFAULT_PASSWORD
from tests.gunicorn_server import Gunicorn, fresh_request, prepare_database, served_env

UNAVAILABLE = ("The console cannot reach its database just now. Nothing you saved was lost; this page will work "
               "again by itself once the database is back — try again in a minute.")




def _an_org_admin() -> tuple[str, int]:
    admin = factories.make_org_admin()
    return admin.email, admin.organization_id


def _csrf_token(page: requests.Response) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)


def _signed_in(url: str, email: str) -> requests.Session:
    browser = requests.Session()
    browser.trust_env = False
    token = _csrf_token(browser.get(f"{url}/sign-in", timeout=30))
    answer = browser.post(f"{url}/sign-in", data={"csrf_token": token, "email": email, "password": DEFAULT_PASSWORD},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    return browser


def _is_unavailable_page(answer: requests.Response) -> bool:
    return (answer.status_code == 503 and answer.headers["Content-Type"].startswith("text/html")
            and UNAVAILABLE in answer.text and 'class="navbar' in answer.text
            and "Enterprise Connect Console</a>" in answer.text and answer.headers.get("Retry-After") == "60"
            and "Internal Server Error" not in answer.text)


def _readiness(url: str, **kwargs) -> tuple[int, dict]:
    answer = fresh_request("GET", f"{url}/readyz", **kwargs)
    return answer.status_code, answer.json()


def test_a_database_outage_is_a_503_page_and_the_same_session_works_once_it_is_back(private_postgres, tmp_path):
    env = served_env(tmp_path, DATABASE_URL=private_postgres.create_database("console"), GUNICORN_WORKERS=2,
                     GUNICORN_THREADS=2)
    email, organization_id = prepare_database(env, _an_org_admin)
    server = Gunicorn(env, tmp_path).wait_until_answering()
    try:
        browser = _signed_in(server.url, email)
        overview = f"{server.url}/orgs/{organization_id}"
        assert browser.get(overview, timeout=30).status_code == 200
        newcomer_form = fresh_request("GET", f"{server.url}/sign-in")
        private_postgres.stop("immediate")

        page = browser.get(overview, allow_redirects=False, timeout=30)
        assert _is_unavailable_page(page), page.text[:500]
        unreachable = (503, {"status": "unavailable", "database": "unreachable"})
        assert _readiness(server.url) == unreachable
        assert _readiness(server.url, cookies=browser.cookies) == unreachable
        assert _is_unavailable_page(browser.get(f"{server.url}/sign-in", allow_redirects=False, timeout=30))
        newcomer = fresh_request("POST", f"{server.url}/sign-in", cookies=newcomer_form.cookies,
                                 data={"csrf_token": _csrf_token(newcomer_form), "email": email,
                                       "password": DEFAULT_PASSWORD})
        assert _is_unavailable_page(newcomer), newcomer.text[:500]
        callback = fresh_request("POST", f"{server.url}/callbacks/delegated/{secrets.token_urlsafe(24)}",
                                 json={"code": "a-code", "state": "a-state"})
        assert (callback.status_code, callback.json()["error"]) == (503, "database_unavailable")
        assert callback.headers["Retry-After"] == "60"

        private_postgres.start()
        assert browser.get(overview, allow_redirects=False, timeout=30).status_code == 200  # still signed in
        assert _readiness(server.url) == (200, {"status": "ok", "database": "ok"})
    finally:
        server.stop()
    output = server.output()
    assert "Request finalizing failed" not in output and "Traceback" not in output, output
    assert "database unreachable on GET /orgs/<int:org_id> (connection refused)" in output


PER_ADDRESS, BURST, WORKERS = 5, 15, 4


def test_sign_in_throttle_holds_across_workers_while_redis_is_down(private_redis, tmp_path):
    env = served_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'console.sqlite'}", REDIS_URL=private_redis.url(),
                     TRUSTED_PROXY_COUNT=1, SIGN_IN_RATE_LIMIT=f"{PER_ADDRESS} per minute",
                     SIGN_IN_ACCOUNT_RATE_LIMIT="100 per minute", GUNICORN_WORKERS=WORKERS, GUNICORN_THREADS=2)
    email, _ = prepare_database(env, _an_org_admin)
    server = Gunicorn(env, tmp_path).wait_until_answering()
    try:
        form = fresh_request("GET", f"{server.url}/sign-in")
        private_redis.stop()

        def attempt(n: int) -> int:
            return fresh_request("POST", f"{server.url}/sign-in", cookies=form.cookies,
                                 headers={"X-Forwarded-For": "198.51.100.7"},
                                 data={"csrf_token": _csrf_token(form), "email": f"guess{n}@customer.example",
                                       "password": "not the password at all"}).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = sorted(pool.map(attempt, range(BURST)))
        assert statuses == [401] * PER_ADDRESS + [429] * (BURST - PER_ADDRESS)
        status, states = _readiness(server.url)
        assert (status, states) == (503, {"status": "unavailable", "database": "ok", "redis": "unreachable",
                                          "queue": "unreachable"})
        right = fresh_request("POST", f"{server.url}/sign-in", cookies=form.cookies,
                              headers={"X-Forwarded-For": "203.0.113.5"},
                              data={"csrf_token": _csrf_token(form), "email": email, "password": DEFAULT_PASSWORD})
        assert right.status_code == 302  # signing in works while Redis is down
    finally:
        server.stop()
    output = server.output()
    assert "Traceback" not in output, output
    # Each worker says so once when it meets the outage: several did, and the limit held across them.
    assert output.count(f"sign-in throttle: Redis at {private_redis.url()} does not answer (connection refused)") > 1
