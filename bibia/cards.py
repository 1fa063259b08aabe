"""The registry's card store in bibia's database (``model_cards``; see :mod:`registry.cards`)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased

from bibia import catalogue_index
from bibia.db import Database
from bibia.db.models import ModelCard
from domain.errors import RegistryUnavailable
from registry.card import Card

#: Names per statement: far below SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 1000


class DatabaseCards:
    """Cards by model version in bibia's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self._db.session() as session:
                yield session
        except OperationalError as exc:
            raise RegistryUnavailable(
                f"base de données de bibia injoignable (fiches des modèles) : {exc.orig}"
            ) from exc

    def latest(self, names: Collection[str]) -> dict[str, Card]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, Card] = {}
        if not wanted:
            return found
        with self._session() as session:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                newest = aliased(ModelCard)
                highest = (
                    select(func.max(newest.version))
                    .where(newest.model_name == ModelCard.model_name)
                    .scalar_subquery()
                )
                rows = session.execute(
                    select(ModelCard.model_name, ModelCard.card).where(
                        ModelCard.model_name.in_(chunk), ModelCard.version == highest
                    )
                )
                for name, text in rows:
                    with contextlib.suppress(ValueError):
                        found[name] = Card.model_validate_json(text)
        return found

    def of_version(self, name: str, version: int) -> Card | None:
        with self._session() as session:
            row = session.get(ModelCard, (name, version))
            return None if row is None else Card.model_validate_json(row.card)

    def put(
        self, name: str, version: int, card: Card, *, created: dt.datetime | None = None
    ) -> Card | None:
        ident = card.identification
        text = card.model_dump_json()
        for attempt in (1, 2):  # a concurrent first write of the same version: update it
            try:
                with self._session() as session:
                    row = session.get(ModelCard, (name, version))
                    replaced = None
                    if row is None:
                        row = ModelCard(model_name=name, version=version)
                        session.add(row)
                    else:
                        with contextlib.suppress(ValueError):
                            replaced = Card.model_validate_json(row.card)
                    row.card, row.project = text, ident.project or None
                    row.owner_siren, row.theme = ident.owner.siren, ident.theme.value
                    catalogue_index.put_model(session, name, version, card, created)
                return replaced
            except IntegrityError:
                if attempt == 2:
                    raise
        return None  # pragma: no cover - the loop returns or raises

    def remove(self, name: str, version: int) -> None:
        with self._session() as session:
            row = session.get(ModelCard, (name, version))
            if row is not None:
                session.delete(row)
                catalogue_index.removed_model_card(session, name, version)


def carded_models(session: Session, projects: Collection[str]) -> list[tuple[str, str, str | None]]:
    """``(model, project, owner SIREN)`` of the models whose latest card names one of ``projects``.

    One statement, whatever the number of models: the projects' listings read no model's tags.
    """
    if not projects:
        return []
    newest = aliased(ModelCard)
    highest = (
        select(func.max(newest.version))
        .where(newest.model_name == ModelCard.model_name)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ModelCard.model_name, ModelCard.project, ModelCard.owner_siren)
        .where(ModelCard.project.in_(list(projects)), ModelCard.version == highest)
        .order_by(ModelCard.model_name)
    )
    return [(name, project, siren) for name, project, siren in rows if project]


@dataclass(frozen=True)
class CatalogueFigures:
    """What the home page counts of the carded models (each model's latest card)."""

    models: int
    by_theme: dict[str, int]
    owner_sirens: set[str]


def catalogue_figures(session: Session) -> CatalogueFigures:
    """How many carded models, how many per theme, and their owners: three statements, no model read."""
    newest = aliased(ModelCard)
    highest = (
        select(func.max(newest.version))
        .where(newest.model_name == ModelCard.model_name)
        .scalar_subquery()
    )
    latest = ModelCard.version == highest
    by_theme = {
        theme: int(n)
        for theme, n in session.execute(
            select(ModelCard.theme, func.count()).where(latest).group_by(ModelCard.theme)
        )
        if theme
    }
    sirens = {
        siren
        for (siren,) in session.execute(select(ModelCard.owner_siren).where(latest).distinct())
        if siren
    }
    models = session.scalar(select(func.count(func.distinct(ModelCard.model_name)))) or 0
    return CatalogueFigures(models=int(models), by_theme=by_theme, owner_sirens=sirens)
