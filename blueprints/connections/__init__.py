"""An organization's connections (service accounts): list, detail, disconnect."""

from flask import Blueprint

bp = Blueprint("connections", __name__)

from blueprints.connections import views  # noqa: E402,F401
