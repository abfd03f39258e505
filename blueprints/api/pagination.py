"""Opaque, tamper-proof cursors for keyset pagination (`next_cursor`), signed with the app's secret key."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from blueprints.api.problems import ApiProblem

SALT = "ecc.api.cursor.v1"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def encode(scope: str, after_id: int) -> str:
    """A cursor that resumes after after_id in the listing named scope (a cursor of one list fits no other)."""
    return _serializer().dumps([scope, after_id])


def decode(scope: str, cursor: str | None) -> int | None:
    """The id to resume after; a cursor that is malformed, forged or from another listing is a 400 problem."""
    if cursor is None:
        return None
    try:
        found_scope, after_id = _serializer().loads(cursor)
    except (BadSignature, ValueError, TypeError):
        raise ApiProblem("invalid-cursor") from None
    if found_scope != scope or not isinstance(after_id, int):
        raise ApiProblem("invalid-cursor", "This cursor belongs to another listing; start again without it.")
    return after_id


def page(rows: list, limit: int, scope: str) -> tuple[list, str | None]:
    """Given limit + 1 rows ordered by id, return the page and the cursor of the next one."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode(scope, rows[-1].id)
