"""catalogue index: a row per carded model and per project with the searchable fields, for searches in SQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:40:00
"""

import json
import re

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# registry.card.fold as of this migration (a migration does not follow later changes).
_FOLD = str.maketrans("àâäáãåçéèêëíìîïñóòôöõúùûüýÿœæ", "aaaaaaceeeeiiiinooooouuuuyyoa")


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().translate(_FOLD)).strip()


def upgrade() -> None:
    op.create_table('catalogue_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('title_key', sa.Text(), nullable=False),
    sa.Column('theme', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('task', sa.String(length=64), nullable=True),
    sa.Column('territory', sa.Text(), nullable=False),
    sa.Column('territory_key', sa.Text(), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'key', name='uq_catalogue_entries_kind_key')
    )
    with op.batch_alter_table('catalogue_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_entries_created'), ['created'], unique=False)

    op.create_table('catalogue_owners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('siren', sa.String(length=9), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_key', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['catalogue_entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('catalogue_owners', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_owners_entry_id'), ['entry_id'], unique=False)

    _backfill(op.get_bind())


def _backfill(connection: sa.engine.Connection) -> None:
    """Entries from the stored cards (each model's highest readable card) and the projects.

    The models' registration dates are MLflow's: the service fills them at start-up
    (bibia.services.open_registry); until then those entries sort last among « récents ».
    """
    entries = sa.table(
        'catalogue_entries',
        *(sa.column(c) for c in (
            'id', 'kind', 'key', 'version', 'title', 'title_key', 'theme', 'status', 'task',
            'territory', 'territory_key', 'project', 'search_text', 'created',
        )),
    )
    owners = sa.table(
        'catalogue_owners',
        sa.column('entry_id'), sa.column('siren'), sa.column('name'), sa.column('name_key'),
    )
    cards = sa.table(
        'model_cards', sa.column('model_name'), sa.column('version'), sa.column('card'),
    )
    projects = sa.table(
        'projects',
        *(sa.column(c) for c in (
            'slug', 'title', 'theme', 'status', 'territory', 'search_text', 'data', 'created_at',
        )),
    )
    rows: list[dict] = []
    owned: dict[tuple[str, str], list[tuple[str, str]]] = {}
    done: set[str] = set()
    found = connection.execute(
        sa.select(cards.c.model_name, cards.c.version, cards.c.card).order_by(
            cards.c.model_name, cards.c.version.desc()
        )
    )
    for name, version, text in found:
        if name in done:
            continue
        try:
            card = json.loads(text)
            ident, model = card['identification'], card['model']
            owner = ident['owner']
            words = [
                ident['title'], ident['summary'], *ident.get('keywords', []),
                owner['name'], owner['siren'], ident['territory'],
            ]
            row = {
                'kind': 'modele', 'key': name, 'version': version,
                'title': ident['title'], 'title_key': _fold(ident['title']),
                'theme': ident['theme'], 'status': ident['status'], 'task': model['task'],
                'territory': ident['territory'], 'territory_key': _fold(ident['territory']),
                'project': ident.get('project') or None,
                'search_text': _fold(' '.join(words)), 'created': None,
            }
        except (ValueError, KeyError, TypeError):
            continue  # unreadable: the next version's card, if any
        done.add(name)
        rows.append(row)
        owned[('modele', name)] = [(owner['siren'], owner['name'])]
    for slug, title, theme, status, territory, text, data, created in connection.execute(
        sa.select(projects)
    ):
        if isinstance(data, str):
            data = json.loads(data)
        rows.append({
            'kind': 'projet', 'key': slug, 'version': None,
            'title': title, 'title_key': _fold(title), 'theme': theme, 'status': status,
            'task': None, 'territory': territory, 'territory_key': _fold(territory),
            'project': None, 'search_text': text, 'created': created,
        })
        named = dict.fromkeys((o['siren'], o['name']) for o in (data or {}).get('owners', []))
        owned[('projet', slug)] = list(named)
    if not rows:
        return
    connection.execute(entries.insert(), rows)
    ids = {
        (kind, key): id_
        for id_, kind, key in connection.execute(
            sa.select(entries.c.id, entries.c.kind, entries.c.key)
        )
    }
    owner_rows = [
        {'entry_id': ids[ident], 'siren': siren, 'name': name, 'name_key': _fold(name)}
        for ident, pairs in owned.items()
        for siren, name in pairs
    ]
    if owner_rows:
        connection.execute(owners.insert(), owner_rows)


def downgrade() -> None:
    with op.batch_alter_table('catalogue_owners', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalogue_owners_entry_id'))
    op.drop_table('catalogue_owners')
    with op.batch_alter_table('catalogue_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalogue_entries_created'))
    op.drop_table('catalogue_entries')
