"""Cronofy's delegated-access callbacks: CSRF-exempt (the sender is Cronofy), verified otherwise."""

from flask import Blueprint

from extensions import csrf

bp = Blueprint("callbacks", __name__, url_prefix="/callbacks")
csrf.exempt(bp)

from blueprints.callbacks import views  # noqa: E402,F401
