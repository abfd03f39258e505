"""The connection wizard, the consent redirect and its return, and setup links for a colleague."""

from flask import Blueprint

bp = Blueprint("onboarding", __name__)

from blueprints.onboarding import connect, views  # noqa: E402,F401
