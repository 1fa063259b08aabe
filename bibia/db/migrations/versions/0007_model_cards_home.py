"""model cards: the card's theme, for the home page's figures without reading every model

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:40:00
"""

import json

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('theme', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_model_cards_theme'), ['theme'], unique=False)
    cards = sa.table(
        'model_cards',
        sa.column('model_name', sa.String()),
        sa.column('version', sa.Integer()),
        sa.column('card', sa.Text()),
        sa.column('theme', sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(cards.c.model_name, cards.c.version, cards.c.card)
    ).all()
    for name, version, text in rows:
        try:
            theme = json.loads(text)['identification']['theme']
        except (ValueError, KeyError, TypeError):
            theme = None
        connection.execute(
            cards.update()
            .where(cards.c.model_name == name, cards.c.version == version)
            .values(theme=theme)
        )


def downgrade() -> None:
    with op.batch_alter_table('model_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_cards_theme'))
        batch_op.drop_column('theme')
