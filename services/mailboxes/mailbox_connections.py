"""Which connection serves a mailbox: the organization's live connection whose domain is the address's.

Used when a mailbox enters the directory without a chosen connection (added by hand, imported with
"by each address's domain"). A subdomain belongs to its parent's connection unless one serves it
itself; where two live connections serve one domain, the active one (then the oldest) is taken.
Imports nothing of `mailbox_import`, which uses it.
"""

from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models.connection import Connection


def serving_connections(organization_id: int) -> dict[str, Connection]:
    """Return {domain: connection} of the organization's live connections that have a domain."""
    query = select(Connection).where(
        Connection.organization_id == organization_id, Connection.status != "revoked", Connection.domain.is_not(None)
    )
    serving: dict[str, Connection] = {}
    for connection in sorted(db.session.scalars(query), key=lambda c: (c.status != "active", c.id)):
        serving.setdefault(connection.domain.strip().lower(), connection)
    return serving


def connection_for(address: str, serving: dict[str, Connection]) -> Connection | None:
    """Return the connection serving address's domain (the most specific domain first), or None."""
    domain = address.rpartition("@")[2].lower()
    for candidate, connection in by_domain_order(serving):
        if domain == candidate or domain.endswith("." + candidate):
            return connection
    return None


def by_domain_order(serving: dict[str, Connection]) -> list[tuple[str, Connection]]:
    """Return the (domain, connection) pairs most specific first, the order a CASE expression must test."""
    return sorted(serving.items(), key=lambda item: len(item[0]), reverse=True)
