"""`POST /callbacks/delegated/<token>`: store the callback, answer 200, exchange later in a worker."""

from __future__ import annotations

from flask import jsonify, request

import jobs
from blueprints.callbacks import bp
from extensions import db, limiter
from services.cronofy import HMAC_HEADER
from services.engine import callbacks


@bp.post("/delegated/<secret:token>")
@limiter.exempt
def delegated(token: str):
    """Verify and store a delegated-access result; commit before answering so nothing is lost."""
    # Flask 3.1: a per-request limit, so a large body is refused (413) before it is read.
    request.max_content_length = callbacks.MAX_BODY_BYTES
    try:
        receipt_id = callbacks.receive(token, request.get_data(cache=False), request.headers.get(HMAC_HEADER))
    except callbacks.CallbackRejected as exc:
        db.session.rollback()
        return jsonify(error=exc.reason), exc.status
    db.session.commit()
    jobs.enqueue_exchange(receipt_id)
    return jsonify(status="received"), 200
