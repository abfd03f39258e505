"""Helpers for the sandbox contract tests: a loopback callback receiver and the OAuth dances over HTTP."""

import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SA_SCOPE = "service_account/accounts/manage service_account/resources/manage"
DELEGATED_SCOPE = "read_account list_calendars read_events create_event delete_event read_free_busy"


class CallbackReceiver:
    """A loopback HTTP server recording every POST; answers with queued statuses, then 200."""

    def __init__(self):
        self.received = []
        self.statuses = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @Request.application
    def _app(self, request):
        with self._lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.received.append({"url": request.url, "path": request.full_path.rstrip("?"),
                                  "headers": dict(request.headers), "raw": request.get_data(),
                                  "status": status, "at": time.monotonic()})
        return Response("OK" if status < 300 else "nope", status=status)

    def callback_url(self, name="m1"):
        """Return a callback URL shaped like the console's, with a secret path segment and a query."""
        return f"{self.url}/callbacks/delegated/tok{name}ABCDEFGHIJKLMNOP?mbx={name}&org=42"

    def wait_for(self, count, timeout=10.0):
        """Wait until `count` callbacks arrived and return all received so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} callbacks, got {len(self.received)}")

    def successful(self):
        """Return the JSON bodies of the callbacks answered 2xx."""
        with self._lock:
            return [json.loads(r["raw"]) for r in self.received if r["status"] < 300]

    def stop(self):
        """Stop the server."""
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()


def http():
    """Return a requests session that never goes through a proxy."""
    session = requests.Session()
    session.trust_env = False
    return session


def authorize_params(sandbox, redirect_uri, **overrides):
    """Return the query of a valid EC authorization request (§3.1)."""
    params = {"response_type": "code", "client_id": sandbox.client_id, "redirect_uri": redirect_uri,
              "scope": SA_SCOPE, "delegated_scope": DELEGATED_SCOPE, "state": "tenant-42.abc"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def approve(sandbox, redirect_uri, domain="acme.example", provider="", decision="approve", **overrides):
    """Approve (or deny) the consent page as the admin; return the parsed redirect query and location."""
    params = authorize_params(sandbox, redirect_uri, **overrides)
    page = http().get(f"{sandbox.url}/enterprise_connect/oauth/authorize", params=params, allow_redirects=False)
    assert page.status_code == 200, page.text
    form = {**params, "domain": domain, "provider": provider, "decision": decision}
    answer = http().post(f"{sandbox.url}/enterprise_connect/oauth/authorize", data=form, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}, location


def token_request(sandbox, client_id=None, client_secret=None, as_form=False, **fields):
    """POST /oauth/token with client_secret_post credentials; return the response."""
    data = {"client_id": client_id or sandbox.client_id, "client_secret": client_secret or sandbox.client_secret,
            **fields}
    if as_form:
        return http().post(f"{sandbox.url}/oauth/token", data=data)
    return http().post(f"{sandbox.url}/oauth/token", json=data)


def connect_service_account(sandbox, redirect_uri="http://127.0.0.1:5000/onboarding/callback", client_secret=None,
                            **kwargs):
    """Run §3.1 and §3.2: consent, then code exchange; return the token response JSON."""
    query, _ = approve(sandbox, redirect_uri, **kwargs)
    response = token_request(sandbox, client_secret=client_secret, grant_type="authorization_code",
                             code=query["code"], redirect_uri=redirect_uri)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token):
    """Return an Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def request_access(sandbox, sa_token, payload):
    """POST /v1/service_account_authorizations with the SA token; return the response."""
    return http().post(f"{sandbox.url}/v1/service_account_authorizations", json=payload, headers=bearer(sa_token))


def members(sandbox, count=1, **filters):
    """Return `count` directory emails matching the filters (trait="none" for ones that succeed)."""
    found = [m["email"] for m in sandbox.directory(limit=max(count, 1), **filters)]
    assert len(found) >= count, f"directory has too few members for {filters}"
    return found[:count]


def delegated_account(sandbox, receiver, sa_token, email, scope=DELEGATED_SCOPE, name="m1"):
    """Request access for one mailbox, wait for its code, exchange it; return the account token JSON."""
    url = receiver.callback_url(name)
    before = len(receiver.received)
    assert request_access(sandbox, sa_token, {"email": email, "callback_url": url, "scope": scope,
                                              "state": name}).status_code == 202
    body = json.loads(receiver.wait_for(before + 1)[before]["raw"])
    response = token_request(sandbox, grant_type="authorization_code", code=body["authorization"]["code"],
                             redirect_uri=url)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_events(sandbox, predicate=lambda event: True, count=1, timeout=10.0, **filters):
    """Poll the event log until `count` events match; the sandbox logs a callback just after sending it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in sandbox.events(limit=500, **filters) if predicate(e)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)
