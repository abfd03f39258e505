"""rate-limit counters

Without REDIS_URL the sign-in throttle counts in this table (services/throttle_store.py), so that every
gunicorn worker shares one count instead of keeping its own in memory.

Revision ID: 5b0c8e2a4f61
Revises: 7d2e9a1c3b85
Create Date: 2026-12-02 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b0c8e2a4f61'
down_revision = '7d2e9a1c3b85'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rate_limit_counters',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_limit_counters'))
    )


def downgrade():
    op.drop_table('rate_limit_counters')
