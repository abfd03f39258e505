"""outgoing email

One row per message the console sends (invitations, password resets, setup links): its recipient,
subject, the Fernet-encrypted body (kept only until a mail server accepts it), its status (queued,
sent, failed), the failure's reason, the attempts and what it was for.

Revision ID: b1e7c3a90d21
Revises: e8b3d5f1a207
Create Date: 2026-12-02 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b1e7c3a90d21'
down_revision = 'e8b3d5f1a207'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outgoing_emails',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=True),
        sa.Column('purpose', sa.String(length=20), nullable=False),
        sa.Column('invitation_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('setup_link_id', sa.Integer(), nullable=True),
        sa.Column('to_address', sa.String(length=254), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('body_encrypted', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('transport', sa.String(length=10), nullable=True),
        sa.Column('failure_reason', sa.String(length=500), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sending_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_outgoing_emails_created_by_id_users')),
        sa.ForeignKeyConstraint(['invitation_id'], ['invitations.id'], name=op.f('fk_outgoing_emails_invitation_id_invitations')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_outgoing_emails_organization_id_organizations')),
        sa.ForeignKeyConstraint(['setup_link_id'], ['setup_links.id'], name=op.f('fk_outgoing_emails_setup_link_id_setup_links')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_outgoing_emails_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_emails')),
    )
    with op.batch_alter_table('outgoing_emails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoing_emails_invitation_id'), ['invitation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoing_emails_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoing_emails_setup_link_id'), ['setup_link_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoing_emails_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('outgoing_emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoing_emails_status'))
        batch_op.drop_index(batch_op.f('ix_outgoing_emails_setup_link_id'))
        batch_op.drop_index(batch_op.f('ix_outgoing_emails_organization_id'))
        batch_op.drop_index(batch_op.f('ix_outgoing_emails_invitation_id'))

    op.drop_table('outgoing_emails')
