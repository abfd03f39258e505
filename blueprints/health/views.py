"""`/healthz`: the process answers. `/readyz`: the database answers too, and with REDIS_URL Redis and the queue."""

from __future__ import annotations

from flask import current_app, jsonify

import jobs
from blueprints.health import bp
from extensions import limiter
from services.platform import readiness


@bp.get("/healthz")
@limiter.exempt
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Say whether every dependency answers (200) or which do not (503)."""
    states = {"database": readiness.database_state()}
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        states.update(redis=readiness.redis_state(redis_url), queue=jobs.queue_state())
    ready = all(state == "ok" for state in states.values())
    return jsonify(status="ok" if ready else "unavailable", **states), 200 if ready else 503
