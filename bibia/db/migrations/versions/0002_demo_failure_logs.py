"""demonstrators: the sandbox's last log lines on failure, for experts only

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('demo_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_logs', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('demo_sessions', schema=None) as batch_op:
        batch_op.drop_column('failure_logs')
