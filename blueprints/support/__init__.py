"""The vendor's support area: every organization, acting on its behalf with a recorded reason."""

from flask import Blueprint, abort
from flask_login import current_user, login_required

bp = Blueprint("support", __name__, url_prefix="/support")


@bp.before_request
@login_required
def require_support():
    """Only support staff enter this blueprint; others get 404 so the area is not advertised."""
    if not current_user.is_support:
        abort(404)


from blueprints.support import api_keys, outbox, views, webhook_deliveries, webhooks  # noqa: E402,F401
