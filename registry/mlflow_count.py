"""How many registered models match a filter, without loading them: MLflow has no count call.

On a database store this is one ``SELECT COUNT(*)`` over the very query
MLflow builds from the filter, reached through MLflow internals (the
SQLAlchemy registry store's private filter query, ``SearchModelUtils``,
``add_prompt_filter_string``). Internals change without notice, so that
path is taken only on the MLflow release it was written and tested for
(:data:`TESTED_MLFLOW`, major and minor). Anywhere else — a tracking
server, or another MLflow release — the count pages through the matches
with the public client: the same number, at one call per 1,000 matches.
The second case logs a warning (once per release) rather than refusing,
so that an MLflow upgrade slows the catalogue's pages down instead of
taking them away; ``tests/test_registry_count.py`` compares both paths.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from sqlalchemy import func, select

from registry.mlflow_client import PAGE

TESTED_MLFLOW = (3, 17)

logger = logging.getLogger(__name__)


def count_registered_models(client: MlflowClient, filter_string: str | None) -> int:
    """How many registered models match ``filter_string``, prompts excluded as the client does.

    Args:
        client: the registry's client.
        filter_string: an MLflow filter (``None`` for every model).
    """
    store = _database_store(client) if internals_tested(mlflow.__version__) else None
    if store is not None:
        return _count_in_database(store, filter_string)
    return _count_by_pages(client, filter_string)


@functools.cache
def internals_tested(version: str) -> bool:
    """Whether MLflow ``version`` is the release whose internals this module relies on."""
    release = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if release == TESTED_MLFLOW:
        return True
    logger.warning(
        "MLflow %s n'est pas la version %s.%s pour laquelle le décompte du catalogue est écrit : "
        "le décompte parcourt les résultats page par page (exact, plus lent)",
        version,
        *TESTED_MLFLOW,
    )
    return False


# The internals are imported only once the release is known to be the tested one: on
# another release they may have moved or gone.


def _database_store(client: MlflowClient) -> Any | None:
    """The client's SQLAlchemy registry store, or None on a tracking server."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    store = client._get_registry_client().store  # type: ignore[no-untyped-call]
    return store if isinstance(store, SqlAlchemyStore) else None


def _count_in_database(store: Any, filter_string: str | None) -> int:
    from mlflow.prompt.registry_utils import add_prompt_filter_string
    from mlflow.utils.search_utils import SearchModelUtils

    with_prompts_hidden = add_prompt_filter_string(filter_string, False)
    parsed = SearchModelUtils.parse_search_filter(with_prompts_hidden)  # type: ignore[no-untyped-call]
    with store.ManagedSessionMaker() as session:
        matches = store._get_search_registered_model_filter_query(
            session, parsed, store.engine.dialect.name
        )
        return int(
            session.execute(select(func.count()).select_from(matches.subquery())).scalar_one()
        )


def _count_by_pages(client: MlflowClient, filter_string: str | None) -> int:
    total, token = 0, None
    while True:
        page = client.search_registered_models(
            filter_string=filter_string, max_results=PAGE, page_token=token
        )
        total += len(page)
        token = page.token
        if not token:
            return total
