"""Console models, one module per aggregate.

`extensions` imports `models.base`, so this package must not import the model modules at
import time; `load_all()` registers every table (the factory and migrations call it).
"""

from importlib import import_module

MODEL_MODULES = ("organization", "user", "invitation", "audit", "connection", "onboarding", "mailbox", "authorization", "selection", "mailbox_import", "mailbox_tally", "session", "rate_limit", "api_key", "idempotency", "portal_link", "outgoing_email", "event", "webhook")


def load_all() -> None:
    """Import every model module so that its tables join the metadata."""
    for name in MODEL_MODULES:
        import_module(f"models.{name}")
