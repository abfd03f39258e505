"""Command-line commands for support staff and operators, registered on the app."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the console's command groups."""
