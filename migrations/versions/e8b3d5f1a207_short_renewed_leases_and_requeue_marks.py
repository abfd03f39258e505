"""short renewed leases and requeue marks

A run's pump lease names its holder (`pump_holder`), so that only the holder renews or releases it.
`pump_requeued_until` (runs) and `requeued_until` (attempts) say that a pump or an exchange job is in
the queue until then: recover() re-enqueues stalled work once, not on every pass.

Revision ID: e8b3d5f1a207
Revises: f2a6c9d4b310
Create Date: 2026-12-02 07:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e8b3d5f1a207'
down_revision = 'f2a6c9d4b310'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pump_holder', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('pump_requeued_until', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('authorization_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requeued_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('authorization_attempts', schema=None) as batch_op:
        batch_op.drop_column('requeued_until')

    with op.batch_alter_table('authorization_runs', schema=None) as batch_op:
        batch_op.drop_column('pump_requeued_until')
        batch_op.drop_column('pump_holder')
