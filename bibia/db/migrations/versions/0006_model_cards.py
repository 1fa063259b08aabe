"""model cards: each model version's card in bibia's database (MLflow keeps only its searchable fields as tags)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 02:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_cards',
    sa.Column('model_name', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('card', sa.Text(), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=True),
    sa.Column('owner_siren', sa.String(length=9), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('model_name', 'version')
    )
    with op.batch_alter_table('model_cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_cards_project'), ['project'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_cards_project'))
    op.drop_table('model_cards')
