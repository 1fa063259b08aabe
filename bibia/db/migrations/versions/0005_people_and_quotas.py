"""people: OpenID Connect identities, sessions without a token, sign-ins under way; quotas per organisation

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 01:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('demo_quota', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('evaluation_quota', sa.Integer(), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('full_name', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('oidc_issuer', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('oidc_subject', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint('uq_users_oidc', ['oidc_issuer', 'oidc_subject'])

    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.alter_column('token_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('method', sa.String(length=16), nullable=False, server_default='jeton'))
        batch_op.add_column(sa.Column('oidc_id_token', sa.Text(), nullable=True))

    op.create_table('oidc_logins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('next_url', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('state_hash')
    )
    with op.batch_alter_table('oidc_logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_logins_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oidc_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_logins_expires_at'))
    op.drop_table('oidc_logins')
    op.execute("DELETE FROM web_sessions WHERE token_id IS NULL")
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_column('oidc_id_token')
        batch_op.drop_column('method')
        batch_op.alter_column('token_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_oidc', type_='unique')
        batch_op.drop_column('last_login_at')
        batch_op.drop_column('oidc_subject')
        batch_op.drop_column('oidc_issuer')
        batch_op.drop_column('full_name')
        batch_op.drop_column('email')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('evaluation_quota')
        batch_op.drop_column('demo_quota')
