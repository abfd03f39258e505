"""api keys, vendor admins and organizations' external ids

`api_keys` holds the vendor's keys for the JSON API (only a SHA-256 of each key); support staff with
`users.is_vendor_admin` manage them; `organizations.external_id` is the vendor's own id for a customer; `idempotency_records` keep
what a POST with an Idempotency-Key answered, for 24 hours; `portal_links` are the single-use links that
send a customer's admin in.

Revision ID: e3c9a1f4b720
Revises: d7a4e9b2c815
Create Date: 2026-12-02 17:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e3c9a1f4b720'
down_revision = 'd7a4e9b2c815'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('prefix', sa.String(length=24), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.Text(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_api_keys_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_api_keys_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
        sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix')),
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_organization_id'), ['organization_id'], unique=False)

    op.create_table(
        'idempotency_records',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('response_encrypted', sa.Text(), nullable=True),
        sa.Column('location', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_idempotency_records_api_key_id_api_keys'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
        sa.UniqueConstraint('api_key_id', 'idempotency_key', name='uq_idempotency_records_key'),
    )
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_records_created_at'), ['created_at'], unique=False)

    op.create_table(
        'portal_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=True),
        sa.Column('admin_email', sa.String(length=254), nullable=False),
        sa.Column('intent', sa.String(length=16), nullable=False),
        sa.Column('return_url', sa.String(length=2000), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_portal_links_api_key_id_api_keys'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_portal_links_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_portal_links_token_hash')),
    )
    with op.batch_alter_table('portal_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_links_organization_id'), ['organization_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_vendor_admin', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_organizations_external_id'), ['external_id'])

    # Plain ADD COLUMN and CREATE INDEX: a batch rebuild of mailboxes on SQLite would drop its tally triggers.
    op.add_column('mailboxes', sa.Column('external_id', sa.String(length=200), nullable=True))
    op.add_column('mailboxes', sa.Column('token_fetched_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('mailboxes', sa.Column('token_fetched_by', sa.String(length=24), nullable=True))
    op.add_column('mailboxes', sa.Column('token_fetch_count', sa.Integer(), server_default='0', nullable=False))
    op.create_index('uq_mailboxes_org_external_id', 'mailboxes', ['organization_id', 'external_id'], unique=True)


def downgrade():
    op.drop_index('uq_mailboxes_org_external_id', table_name='mailboxes')
    for column in ('token_fetch_count', 'token_fetched_by', 'token_fetched_at', 'external_id'):
        op.drop_column('mailboxes', column)

    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_organizations_external_id'), type_='unique')
        batch_op.drop_column('external_id')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('is_vendor_admin')

    with op.batch_alter_table('portal_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_links_organization_id'))

    op.drop_table('portal_links')

    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_records_created_at'))

    op.drop_table('idempotency_records')

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_organization_id'))

    op.drop_table('api_keys')
