"""mailboxes remember a suspected lost grant; exchange claims carry their holder's token

An exchange cut short (a worker killed, the database or Cronofy unavailable) may have authorized the
mailbox at Cronofy without its tokens reaching the console; `lost_grant_suspected_at` marks it until
the next exchange revokes the stale authorization (services/exchange.py).

An exchange's claim carries a random `claim_token`, so that only the worker holding it renews the claim
or finishes the attempt, however long a database outage kept it from doing so.

Plain ADD and DROP COLUMN (no batch rebuild), so the status-tally triggers on mailboxes stay in place.

Revision ID: f2a6c9d4b310
Revises: c4f1a7e2d903
Create Date: 2026-12-02 07:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f2a6c9d4b310'
down_revision = 'c4f1a7e2d903'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('mailboxes', sa.Column('lost_grant_suspected_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('authorization_attempts', sa.Column('claim_token', sa.String(length=32), nullable=True))


def downgrade():
    # SQLite (3.35 and later) drops a column in place, keeping the table's triggers; a batch rebuild would not.
    op.execute('ALTER TABLE authorization_attempts DROP COLUMN claim_token')
    op.execute('ALTER TABLE mailboxes DROP COLUMN lost_grant_suspected_at')
