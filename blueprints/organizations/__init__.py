"""An organization's own pages: overview and its admins."""

from flask import Blueprint

bp = Blueprint("organizations", __name__)

from blueprints.organizations import emails, views  # noqa: E402,F401
