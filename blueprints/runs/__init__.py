"""Bulk runs: starting one, its page with live progress and actions, the history, bulk revoke."""

from flask import Blueprint

from services.mailboxes.failure_guide import explain

bp = Blueprint("runs", __name__)
# The mailbox page shows the guidance of a mailbox's last failure (templates/runs/_guidance.html).
bp.add_app_template_global(explain, "explain_failure")

from blueprints.runs import checklists, failures, revoke, start, views  # noqa: E402,F401
