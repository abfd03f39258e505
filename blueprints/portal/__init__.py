"""Opening a portal link: the vendor's product sends its customer's admin in (services/accounts/portal_links.py).

A browser that came in this way keeps, in its signed cookie, which link and API key it came through
and where "Back to …" leads; every audit event of its requests says so.
"""

from flask import Blueprint

bp = Blueprint("portal", __name__)

from blueprints.portal import views  # noqa: E402,F401
