"""mailbox imports record their encoding, the domains checked and what was left out

Revision ID: c4f1a7e2d903
Revises: 5b0c8e2a4f61
Create Date: 2026-12-02 06:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4f1a7e2d903'
down_revision = '5b0c8e2a4f61'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mailbox_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encoding', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('checked_domains', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('outside_left_out_count', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('mailbox_imports', schema=None) as batch_op:
        batch_op.drop_column('outside_left_out_count')
        batch_op.drop_column('checked_domains')
        batch_op.drop_column('encoding')
