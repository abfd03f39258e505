"""One webhook POST: to the address the SSRF guard approved, within one overall deadline, never a redirect.

The host is resolved again for every attempt (`url_guard.resolve_allowed`: DNS may have changed since
the endpoint was created) and the connection goes to one of the addresses that check returned, never
through a second lookup that could answer differently (DNS rebinding). The request still names the
URL's host: in the `Host` header and, over HTTPS, in the TLS server name and the certificate check.

The deadline covers everything: connecting, the TLS handshake, sending, and reading the answer. A
socket timeout alone would not do, since it limits each read and a server that answers one byte a
second would hold the thread for ever; a timer shuts the socket at the deadline, which ends whatever
read or write is waiting. At most 2 KB of the answer is kept (for the delivery log) and at most
DISCARD_LIMIT more is read and thrown away; a larger answer is cut off by closing the connection, so a
huge body costs neither memory nor time. Redirects are not followed (http.client never does).
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.webhooks import url_guard

EXCERPT_BYTES = 2048
DISCARD_LIMIT = 64 * 1024
_READ_CHUNK = 16 * 1024


@dataclass
class Answer:
    """What one attempt got: a status code (None if no answer), the answer's start, or why it failed."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    excerpt: str = ""
    error: str | None = None
    latency_ms: int = 0
    timed_out: bool = False
    # Set when nothing was sent because the guard refused the address.
    refused: bool = False
    notes: dict = field(default_factory=dict)


class _Deadline:
    """Shut every socket registered with it once the deadline passes, ending any read or write in progress."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            self.fired = True
            raise TimeoutError("deadline passed")
        return left

    def watch(self, sock: socket.socket) -> socket.socket:
        # A duplicate of the socket: it stays valid when TLS takes the original over (wrap_socket detaches
        # it), and shutting it down shuts the one connection both share.
        self._sockets.append(sock.dup())
        return sock

    def _fire(self) -> None:
        self.fired = True
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def cancel(self) -> None:
        self._timer.cancel()
        for sock in self._sockets:
            sock.close()


def _connection(scheme: str, host: str, port: int, addresses: list[str], deadline: _Deadline):
    """An http.client connection that connects to one of the approved addresses, in turn."""

    def create_connection(_address, _timeout=None, source_address=None):
        last: OSError | None = None
        for address in addresses:
            try:
                return deadline.watch(socket.create_connection((address, port), deadline.remaining(),
                                                               source_address))
            except TimeoutError:
                raise
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    timeout = deadline.remaining()
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn._create_connection = create_connection
    return conn


def post(url: str, payload: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool) -> Answer:
    """POST payload to url once and return what happened; never raises for anything the network does."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or url_guard.DEFAULT_PORTS.get(scheme, 443)
    started = time.monotonic()
    try:
        addresses = url_guard.resolve_allowed(host, port, allow_private=allow_private)
    except url_guard.UrlRefused as exc:
        return Answer(error=str(exc), refused=True, latency_ms=_ms(started))
    deadline = _Deadline(timeout)
    answer = Answer()
    conn = None
    try:
        conn = _connection(scheme, host, port, addresses, deadline)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", target, body=payload, headers=headers)
        response = conn.getresponse()
        answer.status = response.status
        answer.headers = {name.lower(): value for name, value in response.getheaders()}
        _read_body(response, answer, deadline)
    except Exception as exc:  # noqa: BLE001 - every network failure is an outcome to record, not a crash
        answer.timed_out = deadline.fired or isinstance(exc, TimeoutError)
        answer.error = _describe(exc, answer.timed_out, timeout)
    finally:
        deadline.cancel()
        if conn is not None:
            conn.close()
    answer.latency_ms = _ms(started)
    return answer


def _read_body(response: http.client.HTTPResponse, answer: Answer, deadline: _Deadline) -> None:
    """Keep the first 2 KB as text, read and drop at most DISCARD_LIMIT more, then stop reading."""
    try:
        kept = response.read(EXCERPT_BYTES)
        answer.excerpt = kept.decode("utf-8", errors="replace")
        discarded = 0
        while discarded <= DISCARD_LIMIT:
            chunk = response.read(_READ_CHUNK)
            if not chunk:
                return
            discarded += len(chunk)
        answer.notes["body"] = f"answer longer than {EXCERPT_BYTES + DISCARD_LIMIT} bytes: the rest was not read"
    except Exception as exc:  # noqa: BLE001 - the status is known; the body is only for the log
        answer.notes["body"] = _describe(exc, deadline.fired or isinstance(exc, TimeoutError), None)


def _describe(exc: BaseException, timed_out: bool, timeout: float | None) -> str:
    """Say in a few words why an attempt failed, as the delivery log shows it."""
    if timed_out:
        return f"no complete answer within {timeout:g} s" if timeout else "the answer did not finish in time"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the connection was closed without an answer"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed answer: {type(exc).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return f"{type(exc).__name__}: {exc}"[:200]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
