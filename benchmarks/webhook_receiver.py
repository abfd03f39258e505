"""The webhook benchmark's receiver, a WSGI app run under gunicorn (one process, many threads).

    RECEIVER_SECRET=whsec_… RECEIVER_LOG=/tmp/received.jsonl [RECEIVER_FAIL_RATE=0.3] \
        gunicorn webhook_receiver:app --pythonpath benchmarks -w 1 --threads 16

It verifies each POST with the Standard Webhooks reference library and appends one JSON line per request
(webhook-id, type, arrival time, verified, the status it answered). With RECEIVER_FAIL_RATE it answers
503 to that share of requests, picked at random among ids it has not failed before, so that no id fails
twice in a row and every event comes through on the schedule's first retry (5 s) rather than after the
5-minute second one. GET answers 200 (readiness).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

from standardwebhooks import Webhook

_webhook = Webhook(os.environ["RECEIVER_SECRET"])
_fail_rate = float(os.environ.get("RECEIVER_FAIL_RATE", "0"))
# A first request fails with probability p; retries never do. Of all requests, p / (1 + p) then fail:
# solve for the share asked.
_first_failure = _fail_rate / (1 - _fail_rate) if _fail_rate < 1 else 1.0
_log = open(os.environ["RECEIVER_LOG"], "a", buffering=1)  # noqa: SIM115 - open for the process's life
_lock = threading.Lock()
_failed_once: set[str] = set()


def app(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ready"]
    arrived = time.time()
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    try:
        payload, verified = _webhook.verify(body, headers), True
    except Exception:  # noqa: BLE001 - counted as a signature failure
        payload, verified = {}, False
    msg_id = headers.get("webhook-id", "")
    with _lock:
        fail = msg_id not in _failed_once and random.random() < _first_failure
        if fail:
            _failed_once.add(msg_id)
        _log.write(json.dumps({"id": msg_id, "type": payload.get("type"), "at": arrived, "verified": verified,
                               "status": 503 if fail else 200}) + "\n")
    status = "503 Service Unavailable" if fail else "200 OK"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"no" if fail else b"ok"]
