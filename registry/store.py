"""The registry facade: the ONLY module that imports MLflow's tracking/registry client.

MLflow holds registered models, versions, aliases, tags, metrics and
artifacts. The card is stored as the ``bibia.card`` registered-model tag
(JSON) and its searchable fields are mirrored as ``bibia.*`` tags, so that
one ``search_registered_models`` call returns a whole catalogue page with
its cards (no call per model) and the stock MLflow UI/client sees them.
Each version also carries its card in its artifacts (``bibia/card.json``
and a Hugging Face style ``README.md``), and its metrics and signature as
``bibia.metrics`` / ``bibia.signature`` version tags.

This module never loads (unpickles) a model: it reads ``MLmodel`` as YAML.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric as MlflowMetric
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.prompt.registry_utils import add_prompt_filter_string
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.model_registry.sqlalchemy_store import (
    SqlAlchemyStore as SqlAlchemyModelRegistryStore,
)
from mlflow.tracking import MlflowClient
from mlflow.utils.proto_json_utils import message_to_json
from mlflow.utils.search_utils import SearchModelUtils, SearchUtils
from sqlalchemy import func as sa_func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError

from domain.errors import (
    BibiaError,
    Conflict,
    InvalidInput,
    InvalidModel,
    NotFound,
    RegistryUnavailable,
)
from registry.card import Card, fold
from registry.export import to_hf_readme
from registry.mlmodel import read_mlmodel, signature_of
from registry.refs import ModelRef, check_alias, check_name, is_siren

CARD_TAG = "bibia.card"
OWNER_TAG = "bibia.owner_siren"
METRICS_TAG = "bibia.metrics"
SIGNATURE_TAG = "bibia.signature"
REGISTERED_BY_TAG = "bibia.registered_by"
EXPERIMENT_PREFIX = "bibia/"
PAGE = 1000  # MLflow's threshold for search_registered_models


@dataclass(frozen=True)
class ModelSummary:
    """A registered model as the catalogue shows it."""

    name: str
    card: Card | None
    aliases: dict[str, int]
    latest_version: int | None
    created: dt.datetime
    updated: dt.datetime
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def owner_siren(self) -> str | None:
        return self.tags.get(OWNER_TAG)


@dataclass(frozen=True)
class VersionInfo:
    """One model version: metrics, signature, and (expert-only) where it lives."""

    name: str
    version: int
    created: dt.datetime
    status: str
    aliases: list[str]
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    signature: dict[str, Any] | None
    registered_by: str | None
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactFile:
    path: str
    is_dir: bool
    size: int | None


@dataclass(frozen=True)
class CatalogueQuery:
    """Filters of the catalogue; all optional, combined with AND."""

    q: str | None = None
    theme: str | None = None
    owner: str | None = None
    territory: str | None = None
    status: str | None = None
    task: str | None = None
    project: str | None = None


def _ts(millis: int | None) -> dt.datetime:
    return dt.datetime.fromtimestamp((millis or 0) / 1000, tz=dt.UTC)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn MLflow errors into bibia errors, once, here."""
    try:
        yield
    except BibiaError:
        raise
    except MlflowException as exc:
        code = exc.error_code
        if code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise NotFound(f"{what} introuvable") from exc
        if code == ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise Conflict(f"{what} existe déjà") from exc
        if code == ErrorCode.Name(INVALID_PARAMETER_VALUE):
            raise InvalidInput(f"{what} : {exc.message}") from exc
        if _refused_value(exc):
            # MLflow's message quotes the SQL it built: say what is wrong, not how it failed.
            if isinstance(exc.__cause__, IntegrityError):
                raise Conflict(
                    f"{what} : modifié en même temps par une autre requête ; réessayez"
                ) from exc
            raise InvalidInput(
                f"{what} : valeur refusée par le registre (nombre trop grand ou valeur d'un type inattendu)"
            ) from exc
        raise RegistryUnavailable(f"registre MLflow indisponible ({what}) : {exc.message}") from exc
    except OSError as exc:
        raise RegistryUnavailable(f"stockage des artefacts indisponible ({what}) : {exc}") from exc


def _refused_value(exc: MlflowException) -> bool:
    """Whether MLflow failed on a value the caller sent rather than on the backend.

    MLflow's database store reports a statement the database refuses
    (a tuple bound as a value, a number beyond 64 bits on PostgreSQL, a
    unique key taken by a concurrent write) as BAD_REQUEST, and a number
    beyond 64 bits on SQLite as an INTERNAL_ERROR caused by an
    OverflowError; a lost database is TEMPORARILY_UNAVAILABLE.
    """
    if exc.error_code == ErrorCode.Name(BAD_REQUEST):
        return True
    return exc.error_code == ErrorCode.Name(INTERNAL_ERROR) and isinstance(
        exc.__cause__, OverflowError
    )


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


def _q(value: str) -> str:
    """A value safe inside an MLflow filter string literal."""
    return value.replace("\\", " ").replace("'", " ").replace('"', " ")


def _filter_string(query: CatalogueQuery) -> str:
    clauses = []
    if query.q:
        for word in fold(_q(query.q)).replace("%", " ").replace("_", " ").split()[:8]:
            clauses.append(f"tags.`bibia.search` ILIKE '%{word}%'")
    exact = {
        "bibia.theme": query.theme,
        "bibia.status": query.status,
        "bibia.task": query.task,
        "bibia.project": query.project,
    }
    for tag, value in exact.items():
        if value:
            clauses.append(f"tags.`{tag}` = '{_q(value)}'")
    if query.owner:
        owner = _q(query.owner).strip()
        if is_siren(owner):
            clauses.append(f"tags.`{OWNER_TAG}` = '{owner}'")
        else:
            clauses.append(f"tags.`bibia.owner` ILIKE '%{owner.replace('%', ' ')}%'")
    if query.territory:
        clauses.append(f"tags.`bibia.territory` ILIKE '%{_q(query.territory).replace('%', ' ')}%'")
    return " AND ".join(clauses)


class Registry:
    """The catalogue on MLflow.

    Args:
        tracking_uri: MLflow backend store URI (``sqlite:///...``, ``postgresql+psycopg://...``)
            or an MLflow tracking server URL.
        artifact_root: where new experiments keep their artifacts (``file:///...`` or ``s3://...``).
        cache_dir: local directory for immutable copies of version artifacts.
    """

    def __init__(self, tracking_uri: str, artifact_root: str, cache_dir: Path) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root.rstrip("/")
        self.cache_dir = cache_dir
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._download_lock = threading.Lock()

    # ------------------------------------------------------------------ reads

    def ping(self) -> None:
        """Check the backend answers (used by /healthz)."""
        with _translated("registre"):
            self._client.search_registered_models(max_results=1)

    def search(self, query: CatalogueQuery = CatalogueQuery()) -> list[ModelSummary]:
        """Every registered model matching ``query``, sorted by name, with cards.

        One MLflow call per 1,000 matching models; never one per model.
        """
        filter_string = _filter_string(query)
        found: list[ModelSummary] = []
        token = None
        with _translated("catalogue"):
            while True:
                page = self._client.search_registered_models(
                    filter_string=filter_string or None,
                    max_results=PAGE,
                    order_by=["name ASC"],
                    page_token=token,
                )
                found.extend(self._summary(rm) for rm in page)
                token = page.token
                if not token:
                    break
        return found

    def search_page(
        self, query: CatalogueQuery, page: int, per_page: int
    ) -> tuple[list[ModelSummary], int]:
        """One page of the models matching ``query`` (sorted by name) and how many match in all.

        Reads ``per_page`` models and counts the rest without loading them, so
        its cost does not grow with the catalogue (``search`` reads every match).

        Args:
            page: page number, from 1.
            per_page: models per page (at most 1,000, MLflow's threshold).
        """
        if page < 1 or not 1 <= per_page <= PAGE:
            raise InvalidInput(f"pagination invalide : page ≥ 1 et 1 ≤ par page ≤ {PAGE}")
        filter_string = _filter_string(query) or None
        offset = (page - 1) * per_page
        with _translated("catalogue"):
            found = self._client.search_registered_models(
                filter_string=filter_string,
                max_results=per_page,
                order_by=["name ASC"],
                page_token=SearchUtils.create_page_token(offset) if offset else None,
            )
            total = self._count(filter_string)
        return [self._summary(rm) for rm in found], total

    def _count(self, filter_string: str | None) -> int:
        """How many registered models match ``filter_string`` (prompts excluded, as the client does).

        MLflow has no count call. On a database store, one COUNT over the
        query MLflow itself builds from the filter; on a tracking server,
        by paging through the matches.
        """
        store = self._client._get_registry_client().store
        if isinstance(store, SqlAlchemyModelRegistryStore):
            parsed = SearchModelUtils.parse_search_filter(
                add_prompt_filter_string(filter_string, False)
            )
            with store.ManagedSessionMaker() as session:
                matches = store._get_search_registered_model_filter_query(
                    session, parsed, store.engine.dialect.name
                )
                return int(
                    session.execute(
                        sa_select(sa_func.count()).select_from(matches.subquery())
                    ).scalar_one()
                )
        total, token = 0, None
        while True:
            page = self._client.search_registered_models(
                filter_string=filter_string, max_results=PAGE, page_token=token
            )
            total += len(page)
            token = page.token
            if not token:
                return total

    def get(self, name: str) -> ModelSummary:
        check_name(name)
        with _translated(f"modèle « {name} »"):
            return self._summary(self._client.get_registered_model(name))

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except NotFound:
            return False
        return True

    def versions(self, name: str) -> list[VersionInfo]:
        """All versions of ``name``, newest first (one MLflow call)."""
        check_name(name)
        aliases = self.get(name).aliases
        with _translated(f"versions de « {name} »"):
            found = self._client.search_model_versions(f"name = '{name}'", max_results=10_000)
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        infos = [self._version(mv, by_version.get(int(mv.version))) for mv in found]
        return sorted(infos, key=lambda v: v.version, reverse=True)

    def version(self, name: str, version: int) -> VersionInfo:
        check_name(name)
        with _translated(f"version {version} de « {name} »"):
            return self._version(self._client.get_model_version(name, str(version)))

    def resolve(self, ref: ModelRef) -> VersionInfo:
        """The version a reference points at (an alias, a number, or the newest)."""
        if ref.version is not None:
            return self.version(ref.name, ref.version)
        if ref.alias is not None:
            return self._version(self._by_alias(ref.name, ref.alias))
        versions = self.versions(ref.name)
        if not versions:
            raise NotFound(f"le modèle « {ref.name} » n'a encore aucune version")
        return versions[0]

    # -------------------------------------------------------------- artifacts

    def local_copy(self, name: str, version: int) -> Path:
        """A local, read-only-by-convention copy of a version's artifacts (cached: versions are immutable)."""
        info = self.version(name, version)
        target = self.cache_dir / "models" / name / str(version)
        if target.is_dir():
            return target
        with self._download_lock:
            if target.is_dir():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
            try:
                with _translated(f"artefacts de « {name} » version {version}"):
                    get_artifact_repository(info.source).download_artifacts("", dst_path=str(tmp))
                os.replace(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target

    def list_artifacts(self, name: str, version: int, path: str = "") -> list[ArtifactFile]:
        root = self.local_copy(name, version)
        base = _inside(root, path)
        if base.is_file():
            return [ArtifactFile(path=path, is_dir=False, size=base.stat().st_size)]
        if not base.is_dir():
            raise NotFound(f"artefact introuvable : {path}")
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        return [
            ArtifactFile(
                path=f"{prefix}{child.name}",
                is_dir=child.is_dir(),
                size=None if child.is_dir() else child.stat().st_size,
            )
            for child in sorted(base.iterdir())
        ]

    def artifact_path(self, name: str, version: int, path: str) -> Path:
        """Local path of one artifact file of a version (inside its cached copy)."""
        target = _inside(self.local_copy(name, version), path)
        if not target.is_file():
            raise NotFound(f"artefact introuvable : {path}")
        return target

    # ----------------------------------------------------------------- writes

    def register(
        self,
        name: str,
        model_dir: Path,
        card: Card,
        *,
        actor: str,
        alias: str | None = None,
        metrics: dict[str, float] | None = None,
        baseline_metrics: dict[str, float] | None = None,
        version_tags: dict[str, str] | None = None,
    ) -> VersionInfo:
        """Register ``model_dir`` as a new version of ``name`` with its card, all or nothing.

        Creates the registered model on first use. Metrics default to those of
        the card's evaluation. On any failure every MLflow entity created by
        this call is removed again and the previous card tags are restored.

        Raises:
            InvalidModel: ``model_dir`` is not an MLflow model directory.
            InvalidInput: bad name or alias.
        """
        check_name(name)
        if alias is not None:
            check_alias(alias)
        mlmodel = read_mlmodel(model_dir)
        if metrics is None:
            metrics = {m.name: m.value for m in card.model.evaluation.metrics}
        if baseline_metrics is None:
            baseline_metrics = {
                m.name: m.baseline for m in card.model.evaluation.metrics if m.baseline is not None
            }
        signature = signature_of(mlmodel)
        undo: list[Callable[[], None]] = []
        client = self._client
        try:
            with _translated(f"enregistrement de « {name} »"):
                experiment_id = self._experiment(name)
                run = client.create_run(
                    experiment_id, run_name=f"enregistrement-{name}", tags={"bibia.actor": actor}
                )
                run_id = run.info.run_id
                undo.append(lambda: self._drop_run(run_id, run.info.artifact_uri))
                now = int(time.time() * 1000)
                batch = [MlflowMetric(k, float(v), now, 0) for k, v in metrics.items()]
                batch += [
                    MlflowMetric(f"baseline.{k}", float(v), now, 0)
                    for k, v in baseline_metrics.items()
                ]
                if batch:
                    client.log_batch(run_id, metrics=batch)
                client.log_artifacts(run_id, str(model_dir), artifact_path="model")
                with tempfile.TemporaryDirectory() as extra:
                    (Path(extra) / "card.json").write_text(
                        card.model_dump_json(indent=2), encoding="utf-8"
                    )
                    client.log_artifacts(run_id, extra, artifact_path="model/bibia")
                    (Path(extra) / "card.json").unlink()
                    (Path(extra) / "README.md").write_text(
                        to_hf_readme(card, name), encoding="utf-8"
                    )
                    client.log_artifacts(run_id, extra, artifact_path="model")
                client.set_terminated(run_id)

                previous_tags = self._existing_tags(name)
                if previous_tags is None:
                    try:
                        client.create_registered_model(
                            name, description=card.identification.summary
                        )
                        undo.append(lambda: client.delete_registered_model(name))
                    except (
                        MlflowException
                    ) as exc:  # created concurrently: fine, add a version to it
                        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                            raise
                version_tags = {
                    **(version_tags or {}),
                    METRICS_TAG: json.dumps({"model": metrics, "baseline": baseline_metrics}),
                    REGISTERED_BY_TAG: actor[:5000],
                }
                if signature is not None:
                    encoded = json.dumps(signature)
                    if len(encoded) > 90_000:
                        raise InvalidModel("signature trop volumineuse (plus de 90 000 caractères)")
                    version_tags[SIGNATURE_TAG] = encoded
                mv = client.create_model_version(
                    name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=version_tags
                )
                undo.append(lambda: client.delete_model_version(name, mv.version))
                self._write_card_tags(name, card, previous_tags or {}, undo)
                if alias is not None:
                    client.set_registered_model_alias(name, alias, mv.version)
                return self.version(name, int(mv.version))
        except BaseException:
            for step in reversed(undo):
                with contextlib.suppress(Exception):
                    step()
            raise

    def update_card(self, name: str, card: Card) -> ModelSummary:
        """Replace the card of ``name`` (the catalogue entry; versions keep theirs)."""
        with _translated(f"fiche de « {name} »"):
            previous = self._existing_tags(name)
        if previous is None:
            raise NotFound(f"modèle « {name} » introuvable")
        undo: list[Callable[[], None]] = []
        try:
            with _translated(f"fiche de « {name} »"):
                self._write_card_tags(name, card, previous, undo)
                self._client.update_registered_model(name, description=card.identification.summary)
        except BaseException:
            for step in reversed(undo):
                with contextlib.suppress(Exception):
                    step()
            raise
        return self.get(name)

    def set_alias(self, name: str, alias: str, version: int) -> VersionInfo:
        check_name(name)
        check_alias(alias)
        self.version(name, version)
        with _translated(f"alias « {alias} » de « {name} »"):
            self._client.set_registered_model_alias(name, alias, str(version))
        return self.version(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        check_name(name)
        check_alias(alias)
        summary = self.get(name)
        if alias not in summary.aliases:
            raise NotFound(f"alias « {alias} » introuvable pour « {name} »")
        with _translated(f"alias « {alias} » de « {name} »"):
            self._client.delete_registered_model_alias(name, alias)

    # ------------------------------------------------------ MLflow REST shapes

    def rest_registered_model(self, name: str) -> dict[str, Any]:
        """``registered-models/get`` as MLflow's REST API answers it."""
        with _translated(f"modèle « {name} »"):
            return json.loads(
                message_to_json(self._client.get_registered_model(check_name(name)).to_proto())
            )

    def rest_search_registered_models(
        self, max_results: int, page_token: str | None
    ) -> dict[str, Any]:
        with _translated("catalogue"):
            page = self._client.search_registered_models(
                max_results=min(max_results, PAGE), page_token=page_token
            )
        body: dict[str, Any] = {
            "registered_models": [json.loads(message_to_json(rm.to_proto())) for rm in page]
        }
        if page.token:
            body["next_page_token"] = page.token
        return body

    def rest_model_version(self, name: str, version: int, source: str) -> dict[str, Any]:
        """``model-versions/get`` with ``source`` replaced (the real location stays private)."""
        with _translated(f"version {version} de « {name} »"):
            mv = self._client.get_model_version(check_name(name), str(version))
        return self._rest_version(mv, source)

    def rest_version_by_alias(
        self, name: str, alias: str, source_for: Callable[[int], str]
    ) -> dict[str, Any]:
        mv = self._by_alias(check_name(name), check_alias(alias))
        return self._rest_version(mv, source_for(int(mv.version)))

    # ---------------------------------------------------------------- helpers

    def _by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at; NotFound for an unknown model or alias.

        MLflow answers an unknown alias with INVALID_PARAMETER_VALUE (a 400),
        but for the caller it is a missing resource.
        """
        what = f"alias « {alias} » de « {name} »"
        with _translated(what):
            try:
                return self._client.get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                if (
                    exc.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
                    and "not found" in exc.message
                ):
                    raise NotFound(f"{what} introuvable") from exc
                raise

    @staticmethod
    def _rest_version(mv: ModelVersion, source: str) -> dict[str, Any]:
        body = json.loads(message_to_json(mv.to_proto()))
        body["source"] = source
        body.pop("run_link", None)
        body.pop("user_id", None)
        return body

    def _experiment(self, name: str) -> str:
        exp_name = f"{EXPERIMENT_PREFIX}{name}"
        found = self._client.get_experiment_by_name(exp_name)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(
                exp_name, artifact_location=f"{self.artifact_root}/{name}"
            )
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            return self._client.get_experiment_by_name(exp_name).experiment_id

    def _drop_run(self, run_id: str, artifact_uri: str) -> None:
        with contextlib.suppress(Exception):
            get_artifact_repository(artifact_uri).delete_artifacts()
        self._client.delete_run(run_id)

    def _existing_tags(self, name: str) -> dict[str, str] | None:
        try:
            return dict(self._client.get_registered_model(name).tags)
        except MlflowException as exc:
            if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                return None
            raise

    def _write_card_tags(
        self, name: str, card: Card, previous: dict[str, str], undo: list[Callable[[], None]]
    ) -> None:
        client = self._client
        new_tags = {**card.search_tags(), CARD_TAG: card.model_dump_json()}
        if len(new_tags[CARD_TAG]) > 95_000:
            raise InvalidInput(
                "fiche trop volumineuse : 95 000 caractères au plus une fois sérialisée"
            )

        def restore() -> None:
            for key in new_tags:
                if key in previous:
                    client.set_registered_model_tag(name, key, previous[key])
                else:
                    with contextlib.suppress(MlflowException):
                        client.delete_registered_model_tag(name, key)

        undo.append(restore)
        for key, value in new_tags.items():
            client.set_registered_model_tag(name, key, value)

    @staticmethod
    def _summary(rm: RegisteredModel) -> ModelSummary:
        tags = dict(rm.tags or {})
        card = None
        if CARD_TAG in tags:
            with contextlib.suppress(ValueError):
                card = Card.model_validate_json(tags[CARD_TAG])
        aliases = {alias: int(version) for alias, version in (rm.aliases or {}).items()}
        latest = max((int(mv.version) for mv in rm.latest_versions or []), default=None)
        return ModelSummary(
            name=rm.name,
            card=card,
            aliases=aliases,
            latest_version=latest,
            created=_ts(rm.creation_timestamp),
            updated=_ts(rm.last_updated_timestamp),
            tags=tags,
        )

    @staticmethod
    def _version(mv: ModelVersion, aliases: list[str] | None = None) -> VersionInfo:
        tags = dict(mv.tags or {})
        metrics: dict[str, Any] = {}
        with contextlib.suppress(ValueError, TypeError):
            metrics = json.loads(tags.get(METRICS_TAG, "{}"))
        signature = None
        with contextlib.suppress(ValueError, TypeError):
            signature = json.loads(tags[SIGNATURE_TAG]) if SIGNATURE_TAG in tags else None
        return VersionInfo(
            name=mv.name,
            version=int(mv.version),
            created=_ts(mv.creation_timestamp),
            status=str(mv.status),
            aliases=sorted(aliases if aliases is not None else (mv.aliases or [])),
            metrics=metrics.get("model", {}),
            baseline_metrics=metrics.get("baseline", {}),
            signature=signature,
            registered_by=tags.get(REGISTERED_BY_TAG),
            run_id=mv.run_id,
            source=mv.source,
            tags=tags,
        )

    # ------------------------------------- MLflow REST searches (the gateway)

    def rest_search(
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
        args = {
            "filter_string": filter_string or None,
            "order_by": order_by or None,
            "page_token": page_token or None,
        }
        with _translated("recherche"), _caller_grammar("recherche"):
            if kind == "registered_models":
                page: Any = self._client.search_registered_models(
                    max_results=min(max_results, PAGE), **args
                )
            elif kind == "model_versions":
                page = self._client.search_model_versions(
                    max_results=min(max_results, 10_000), **args
                )
            else:
                raise InvalidInput(f"recherche inconnue : {kind!r}")

        def public(mv: ModelVersion) -> dict[str, Any]:
            return self._rest_version(mv, source_for(mv.name, int(mv.version)))

        items = []
        for item in page:
            body = json.loads(message_to_json(item.to_proto()))
            if kind == "model_versions":
                body = public(item)
            else:
                body.pop("user_id", None)
                body["latest_versions"] = [public(mv) for mv in item.latest_versions or []]
            items.append(body)
        result: dict[str, Any] = {kind: items}
        if page.token:
            result["next_page_token"] = page.token
        return result


def _inside(root: Path, path: str) -> Path:
    """``root / path``, refusing anything that would leave ``root``."""
    clean = (path or "").strip("/")
    if "\\" in clean or any(part in {"..", "."} for part in clean.split("/") if part):
        raise InvalidInput(f"chemin d'artefact invalide : {path!r}")
    target = (root / clean).resolve()
    if target != root.resolve() and root.resolve() not in target.parents:
        raise InvalidInput(f"chemin d'artefact invalide : {path!r}")
    return target
