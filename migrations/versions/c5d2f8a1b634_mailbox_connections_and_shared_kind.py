"""mailbox connections and the shared kind

Resource sync keeps the name an admin gave a mailbox and remembers the upstream's beside it:
`mailboxes.upstream_name` is the name Cronofy's resource listing gave last (§3.9), None for a mailbox
resource sync has never listed. The `shared` kind was already allowed by the `kind_known` check.

Data, once:

- Shared mailboxes that resource sync added before it told them apart were stored as `resource`.
  Cronofy's listing has no kind field (§3.9); the sync now takes a listed entry with neither a
  capacity nor a location (both are always asked for) to be a shared mailbox, rooms and equipment
  having at least one of them. The same rule is applied to the rows resource sync added earlier
  (source `resource_sync`, kind `resource`, no capacity, no location), so old and new rows agree;
  rows an admin imported or added by hand keep the kind the admin gave. The downgrade leaves the
  kinds as they are (`shared` is valid before this revision too).
- Their names came from upstream, so `upstream_name` starts as their current name.
- Mailboxes without a connection get one: the connection their latest authorized attempt went
  through, else the one live connection whose domain is their address's domain (none when two
  connections serve the same domain).

Plain ADD and DROP COLUMN (no batch rebuild), so the status-tally triggers on mailboxes stay in place.

Revision ID: c5d2f8a1b634
Revises: b1e7c3a90d21
Create Date: 2026-12-02 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5d2f8a1b634'
down_revision = 'b1e7c3a90d21'
branch_labels = None
depends_on = None

_AUTHORIZED_THROUGH = """
    SELECT a.connection_id FROM authorization_attempts a
    WHERE a.mailbox_id = mailboxes.id AND a.status = 'authorized'
    ORDER BY a.id DESC LIMIT 1
"""
_SERVING_CONNECTIONS = """
    FROM connections c
    WHERE c.organization_id = mailboxes.organization_id AND c.status <> 'revoked' AND c.domain IS NOT NULL
      AND lower(mailboxes.email) LIKE '%@' || lower(c.domain)
"""


def upgrade():
    op.add_column('mailboxes', sa.Column('upstream_name', sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE mailboxes SET kind = 'shared' WHERE source = 'resource_sync' AND kind = 'resource' "
        "AND capacity IS NULL AND location IS NULL"
    )
    op.execute("UPDATE mailboxes SET upstream_name = name WHERE source = 'resource_sync'")
    op.execute(
        f"UPDATE mailboxes SET connection_id = ({_AUTHORIZED_THROUGH}) "
        f"WHERE connection_id IS NULL AND EXISTS ({_AUTHORIZED_THROUGH})"
    )
    op.execute(
        f"UPDATE mailboxes SET connection_id = (SELECT min(c.id) {_SERVING_CONNECTIONS}) "
        f"WHERE connection_id IS NULL AND (SELECT count(*) {_SERVING_CONNECTIONS}) = 1"
    )


def downgrade():
    # SQLite (3.35 and later) drops a column in place, keeping the table's triggers; a batch rebuild would not.
    op.execute('ALTER TABLE mailboxes DROP COLUMN upstream_name')
