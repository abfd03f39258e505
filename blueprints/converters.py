"""URL converters for every route: ids the database can hold, and path segments that are secrets.

`<int:...>` is replaced by a bounded converter, so that an id beyond a 64-bit integer answers 404
instead of overflowing the database driver. `<secret:...>` marks a one-time secret (a reset,
invitation, setup or callback token): logs show it masked and its pages are never cached
(blueprints/secret_paths.py, blueprints/security.py).
"""

from __future__ import annotations

import re

from flask import Flask
from werkzeug.routing import BaseConverter, IntegerConverter, Rule

# The largest value of a signed 64-bit column (PostgreSQL BIGINT, SQLite INTEGER).
MAX_ID = 2**63 - 1
_SECRET_ARGUMENT = re.compile(r"<secret(?:\([^)]*\))?:(\w+)>")


class BoundedIntConverter(IntegerConverter):
    """`int`, limited by default to what the database can hold: a larger id matches no route."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class SecretConverter(BaseConverter):
    """One path segment that is a one-time secret; it matches what the default converter matches."""


def secret_arguments(rule: Rule) -> tuple[str, ...]:
    """Return the names of rule's arguments that use the `secret` converter."""
    return tuple(_SECRET_ARGUMENT.findall(rule.rule))


def parse_id(raw: str | None) -> int | None:
    """Return raw as an id (a positive whole number the database can hold), or None if it is not one.

    Use it for ids from query strings and forms: `request.args.get("selection", type=parse_id)`.
    """
    text = str(raw or "")
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)) or not 0 < int(text) <= MAX_ID:
        return None
    return int(text)


def init_app(app: Flask) -> None:
    """Register the converters; this must run before any blueprint adds its rules."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.url_map.converters["secret"] = SecretConverter
