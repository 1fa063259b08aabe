"""replicas: each replica's heartbeat, and the replica driving a demonstrator's launch

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replicas',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('demo_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replica_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('demo_sessions', schema=None) as batch_op:
        batch_op.drop_column('replica_id')
    op.drop_table('replicas')
