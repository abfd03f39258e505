"""A scripted Cronofy stand-in on loopback, and clients pointed at it."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services.cronofy import CronofyClient, RetryPolicy, upstream_for

CLIENT_ID = "cli_test_123"
CLIENT_SECRET = "sec_TOPSECRET_client_secret_9x"


@dataclass
class Reply:
    """One scripted response: status, headers, body (dict/list → JSON, str/bytes → raw), delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    """One request the stub received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class StubUpstream:
    """A WSGI app answering each request with the next scripted Reply."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def reply(self, status: int = 200, body: Any = None, *, headers: dict | None = None, delay: float = 0.0) -> None:
        self.replies.append(Reply(status, body, headers or {}, delay))

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.seen.append(Seen(
            request.method, request.path, parse_qs(request.query_string.decode()),
            dict(request.headers), request.get_data(),
        ))
        scripted = self.replies.popleft() if self.replies else Reply(599, {"error": "unscripted_request"})
        if scripted.delay:
            self.stopping.wait(scripted.delay)
        return _response(scripted)(environ, start_response)

    def start(self) -> StubUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _response(reply: Reply) -> Response:
    body = reply.body
    mimetype = "text/plain"
    if isinstance(body, (dict, list)):
        body, mimetype = json.dumps(body), "application/json"
    return Response(body if body is not None else b"", status=reply.status, headers=reply.headers, mimetype=mimetype)


class SleepRecorder:
    """Stands in for time.sleep in RetryPolicy: records delays, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def stub():
    server = StubUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_client(stub, sleeps):
    """Build a CronofyClient on the stub; jitter is pinned to its ceiling and sleeps are recorded."""
    clients: list[CronofyClient] = []

    def _make(*, max_attempts: int = 3, read_timeout: float = 2.0, before_request=None) -> CronofyClient:
        upstream = upstream_for(
            "de", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, sandbox_url=stub.url,
            connect_timeout=1.0, read_timeout=read_timeout,
        )
        retry = RetryPolicy(max_attempts=max_attempts, base_delay=0.5, max_delay=10.0, sleep=sleeps, random=lambda: 1.0)
        client = CronofyClient(upstream, retry=retry, before_request=before_request)
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()


@pytest.fixture
def cronofy(make_client) -> CronofyClient:
    return make_client()
