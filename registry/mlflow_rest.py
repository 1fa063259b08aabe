"""Registered models and versions in the shapes of MLflow's REST API, for the gateway.

:mod:`bibia.gateway` answers the stock MLflow client read-only. Every
version's ``source`` is replaced by a location the caller may use: where
artifacts really live stays private.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.tracking import MlflowClient
from mlflow.utils.proto_json_utils import message_to_json

from domain.errors import InvalidInput
from registry.mlflow_client import PAGE, by_alias, translated
from registry.refs import check_alias, check_name

MAX_VERSIONS = 10_000  # MLflow's threshold for search_model_versions


class MlflowRest:
    """Read-only answers of MLflow's model-registry REST API."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def registered_model(self, name: str) -> dict[str, Any]:
        """``registered-models/get`` as MLflow's REST API answers it."""
        with translated(f"modèle « {name} »"):
            return _as_json(self._client.get_registered_model(check_name(name)))

    def model_version(self, name: str, version: int, source: str) -> dict[str, Any]:
        """``model-versions/get`` with ``source`` replaced (the real location stays private)."""
        with translated(f"version {version} de « {name} »"):
            mv = self._client.get_model_version(check_name(name), str(version))
        return _public_version(mv, source)

    def version_by_alias(
        self, name: str, alias: str, source_for: Callable[[int], str]
    ) -> dict[str, Any]:
        """``registered-models/alias`` with ``source`` replaced by ``source_for(version)``."""
        mv = by_alias(self._client, check_name(name), check_alias(alias))
        return _public_version(mv, source_for(int(mv.version)))

    def search(
        self,
        kind: str,
        filter_string: str | None,
        order_by: list[str] | None,
        max_results: int,
        page_token: str | None,
        source_for: Callable[[str, int], str],
    ) -> dict[str, Any]:
        """``registered-models/search`` or ``model-versions/search`` with MLflow's own filter grammar.

        The stock client always sends a filter (it hides prompts), so the
        gateway needs MLflow's grammar, parsed by MLflow (never spliced into SQL).
        Every version's ``source`` is replaced by ``source_for(name, version)``.

        Args:
            kind: ``"registered_models"`` or ``"model_versions"``.
            max_results: clamped to MLflow's own thresholds (1,000 / 10,000); pages carry a token.

        Raises:
            InvalidInput: a bad filter or ordering, or one on ``source_path`` (it would reveal
                where artifacts really live).
        """
        if any("source" in clause.lower() for clause in [filter_string or "", *(order_by or [])]):
            raise InvalidInput(
                "filtre ou tri sur « source » refusé : l'emplacement réel des artefacts reste privé"
            )
        asked: dict[str, Any] = {
            "filter_string": filter_string or None,
            "order_by": order_by or None,
            "page_token": page_token or None,
        }
        with translated("recherche"), _caller_grammar("recherche"):
            if kind == "registered_models":
                page: Any = self._client.search_registered_models(
                    max_results=min(max_results, PAGE), **asked
                )
            elif kind == "model_versions":
                page = self._client.search_model_versions(
                    max_results=min(max_results, MAX_VERSIONS), **asked
                )
            else:
                raise InvalidInput(f"recherche inconnue : {kind!r}")

        def public(mv: ModelVersion) -> dict[str, Any]:
            return _public_version(mv, source_for(mv.name, int(mv.version)))

        items = []
        for item in page:
            if kind == "model_versions":
                body = public(item)
            else:
                body = _as_json(item)
                body.pop("user_id", None)
                body["latest_versions"] = [public(mv) for mv in item.latest_versions or []]
            items.append(body)
        result: dict[str, Any] = {kind: items}
        if page.token:
            result["next_page_token"] = page.token
        return result


def _as_json(entity: RegisteredModel | ModelVersion) -> dict[str, Any]:
    """``entity`` as MLflow's REST API serialises it."""
    body: dict[str, Any] = json.loads(message_to_json(entity.to_proto()))  # type: ignore[no-untyped-call]
    return body


def _public_version(mv: ModelVersion, source: str) -> dict[str, Any]:
    body = _as_json(mv)
    body["source"] = source
    body.pop("run_link", None)
    body.pop("user_id", None)
    return body


@contextlib.contextmanager
def _caller_grammar(what: str) -> Iterator[None]:
    """MLflow's parsers over a caller's filter, ordering or page token: what they choke on is a 400.

    Some inputs make them fail with a plain Python error instead of an
    MlflowException (``name IS NULL`` a ValueError, a page token that decodes
    to ``null`` an AttributeError); those are the caller's mistakes, not the service's.
    """
    try:
        yield
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise InvalidInput(
            f"{what} : filtre, tri ou jeton de page illisible (voir la syntaxe des filtres de MLflow, "
            "par exemple « name = 'cantine-nantes' »)"
        ) from exc
