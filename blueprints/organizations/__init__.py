"""An organization's own pages: overview and its admins."""

from flask import Blueprint, g

bp = Blueprint("organizations", __name__)


@bp.app_context_processor
def support_access_context() -> dict:
    """Expose the support access that `services.tenancy.organization_or_404` found, for the banner."""
    return {"support_access": g.get("support_access")}


from blueprints.organizations import views  # noqa: E402,F401
