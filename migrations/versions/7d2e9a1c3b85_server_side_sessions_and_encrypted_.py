"""server-side sessions and encrypted callback URLs

Sessions are recorded on the server (user_sessions) so that signing out ends them. The callback URL
of an attempt carries a secret, so it is now stored Fernet-encrypted under TOKEN_ENCRYPTION_KEYS, like
codes and tokens; existing rows are encrypted (and decrypted on downgrade) with the configured keys.

Revision ID: 7d2e9a1c3b85
Revises: 36441dd271fb
Create Date: 2026-12-02 06:10:00.000000

"""
from alembic import op
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet
from flask import current_app


# revision identifiers, used by Alembic.
revision = '7d2e9a1c3b85'
down_revision = '36441dd271fb'
branch_labels = None
depends_on = None

attempts = sa.table(
    'authorization_attempts',
    sa.column('id', sa.Integer()),
    sa.column('callback_url', sa.Text()),
    sa.column('callback_url_encrypted', sa.Text()),
)


def _cipher() -> MultiFernet:
    keys = current_app.config['TOKEN_ENCRYPTION_KEYS']
    keys = keys if isinstance(keys, (list, tuple)) else [k for k in str(keys).split(',') if k.strip()]
    return MultiFernet([Fernet(k.strip().encode()) for k in keys])


def _copy(source: str, target: str, convert) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(attempts.c.id, attempts.c[source]).where(attempts.c[source].is_not(None)))
    for row_id, value in rows.all():
        connection.execute(attempts.update().where(attempts.c.id == row_id).values({target: convert(value)}))


def upgrade():
    op.create_table('user_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=False),
    sa.Column('ip_address', sa.String(length=45), nullable=False),
    sa.Column('stash_encrypted', sa.Text(), nullable=True),
    sa.CheckConstraint("end_reason IS NULL OR end_reason IN ('signed_out', 'password_changed', 'deactivated', 'replaced', 'expired')", name=op.f('ck_user_sessions_end_reason_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name='uq_user_sessions_token_hash')
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_user_sessions_user_ended', ['user_id', 'ended_at'], unique=False)

    with op.batch_alter_table('authorization_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_url_encrypted', sa.Text(), nullable=True))
    cipher = _cipher()
    _copy('callback_url', 'callback_url_encrypted', lambda url: cipher.encrypt(url.encode()).decode())
    with op.batch_alter_table('authorization_attempts', schema=None) as batch_op:
        batch_op.alter_column('callback_url_encrypted', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('callback_url')


def downgrade():
    with op.batch_alter_table('authorization_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_url', sa.TEXT(), nullable=True))
    cipher = _cipher()
    _copy('callback_url_encrypted', 'callback_url', lambda value: cipher.decrypt(value.encode()).decode())
    with op.batch_alter_table('authorization_attempts', schema=None) as batch_op:
        batch_op.alter_column('callback_url', existing_type=sa.TEXT(), nullable=False)
        batch_op.drop_column('callback_url_encrypted')

    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_user_sessions_user_ended')

    op.drop_table('user_sessions')
