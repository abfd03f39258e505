"""`Idempotency-Key` on the POSTs that create something: the same key and body within 24 hours get the first
answer again (with `Idempotent-Replayed: true`); the same key with another body is refused (422).

The key is claimed in its own transaction before the view runs, so two concurrent requests with one key
cannot both create: the second is told the first is still being handled (409). A claim left by a process
that died is taken over after CLAIM_TIMEOUT.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import timedelta

from flask import Response, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from blueprints.api.problems import ApiProblem
from extensions import db
from models.base import utcnow
from models.idempotency import IdempotencyRecord
from services.platform.crypto import cipher_for

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
CLAIM_TIMEOUT = timedelta(minutes=2)
MAX_KEY_LENGTH = 255
HEADER_DOC = {"in": "header", "name": HEADER, "required": False, "schema": {"type": "string", "maxLength": 255},
              "description": "Any unique string (a UUID): a retry with the same key and body gets the first answer "
                             "again for 24 hours; another body with the same key is refused (422)."}


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.get_data(cache=True)):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    body = cipher_for(current_app.config).decrypt(record.response_encrypted) if record.response_encrypted else ""
    response = Response(body, status=record.status_code,
                        mimetype="application/problem+json" if record.status_code >= 400 else "application/json")
    if record.location:
        response.headers["Location"] = record.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _claim(key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Return a new claim, or the response that settles the request without running the view."""
    api_key_id = g.api_key.id
    now = utcnow()
    found = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == api_key_id,
                                                              IdempotencyRecord.idempotency_key == key))
    if found is not None:
        abandoned = found.status_code is None and now - found.created_at > CLAIM_TIMEOUT
        if now - found.created_at > RETENTION or abandoned:
            db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == found.id))
            db.session.commit()
        elif found.fingerprint != fingerprint:
            raise ApiProblem("idempotency-key-reused",
                             "This Idempotency-Key was used with another request body in the last 24 hours.")
        elif found.status_code is None:
            raise ApiProblem("idempotency-in-progress",
                             "The first request with this Idempotency-Key is still being handled; retry shortly.")
        else:
            return _replay(found)
    record = IdempotencyRecord(api_key_id=api_key_id, idempotency_key=key, fingerprint=fingerprint, created_at=now)
    db.session.add(record)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiProblem("idempotency-in-progress",
                         "Another request with this Idempotency-Key arrived at the same time; retry shortly.") from None
    return record


def _settle(record_id: int, response: Response) -> None:
    db.session.rollback()  # whatever the view left unfinished is not ours to commit
    record = db.session.get(IdempotencyRecord, record_id)
    if record is None:
        return
    if response.status_code >= 500:
        db.session.delete(record)  # a failure the client should be able to retry
    else:
        record.status_code = response.status_code
        record.response_encrypted = cipher_for(current_app.config).encrypt(response.get_data(as_text=True))
        record.location = response.headers.get("Location")
    db.session.commit()


def idempotent(view):
    """Decorate a creating POST view (below the route and scope decorators, above the argument parsing)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ApiProblem("validation-failed", f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
                             errors=[{"parameter": HEADER, "in": "headers",
                                      "detail": f"Must be 1 to {MAX_KEY_LENGTH} characters."}])
        claimed = _claim(key, _fingerprint())
        if isinstance(claimed, Response):
            return claimed
        record_id = claimed.id
        try:
            response = _as_response(view(*args, **kwargs))
        except ApiProblem as problem:
            from blueprints.api.problems import from_http_exception

            response = from_http_exception(problem)
        except Exception:
            db.session.rollback()
            db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
            db.session.commit()
            raise
        _settle(record_id, response)
        return response

    docs = dict(getattr(view, "_apidoc", {}))
    manual = dict(docs.get("manual_doc", {}))
    manual["parameters"] = [*manual.get("parameters", []), HEADER_DOC]
    docs["manual_doc"] = manual
    wrapper._apidoc = docs
    return wrapper


def _as_response(result) -> Response:
    from flask import make_response

    return make_response(result)
