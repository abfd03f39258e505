"""run snapshot: the run's clock of active (running) time, so that rates leave pauses out

Revision ID: d7a4e9b2c815
Revises: c5d2f8a1b634
Create Date: 2026-12-02 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd7a4e9b2c815'
down_revision = 'c5d2f8a1b634'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_seconds', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('running_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('wave_started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('wave_active_offset', sa.Float(), server_default='0', nullable=False))
    # Runs under way start their clock now that it exists: their rates count from their start.
    op.execute("UPDATE authorization_runs SET running_since = started_at, wave_started_at = started_at "
               "WHERE status = 'running'")


def downgrade():
    with op.batch_alter_table('authorization_runs', schema=None) as batch_op:
        batch_op.drop_column('wave_active_offset')
        batch_op.drop_column('wave_started_at')
        batch_op.drop_column('running_since')
        batch_op.drop_column('active_seconds')
