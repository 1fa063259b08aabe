"""Registry writes: register a version with its card (all or nothing), replace a card, move aliases.

A version is an MLflow run (``bibia/<name>`` experiment) whose ``model``
artifacts are the model directory plus the card (``bibia/card.json`` and a
Hugging Face style ``README.md``); its metrics are logged on the run and
mirrored, with the signature, as version tags (see :mod:`registry.entries`).
Nothing here loads (unpickles) a model: ``MLmodel`` is read as YAML.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mlflow.entities import Metric as MlflowMetric
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from domain.errors import InvalidInput, InvalidModel, NotFound
from registry.card import Card
from registry.cards import CardStore, search_tags
from registry.catalogue import Catalogue, from_millis
from registry.entries import (
    CARD_TAG,
    METRICS_TAG,
    REGISTERED_BY_TAG,
    SIGNATURE_TAG,
    ModelSummary,
    VersionInfo,
)
from registry.export import to_hf_readme
from registry.mlflow_client import PAGE, already_exists, does_not_exist, translated
from registry.mlmodel import read_mlmodel, signature_of
from registry.refs import check_alias, check_name

EXPERIMENT_PREFIX = "bibia/"

Undo = list[Callable[[], None]]


@contextlib.contextmanager
def _all_or_nothing() -> Iterator[Undo]:
    """Steps that undo what the block did; on any failure they run, newest first, and it re-raises."""
    undo: Undo = []
    try:
        yield undo
    except BaseException:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()
        raise


class Registration:
    """The registry's writes.

    Args:
        client: the registry's client.
        catalogue: reads back what was written (the answers are the catalogue's entries).
        artifact_root: where new experiments keep their artifacts (``file:///...`` or ``s3://...``).
        cards: where versions' cards are kept (:mod:`registry.cards`).
    """

    def __init__(
        self, client: MlflowClient, catalogue: Catalogue, artifact_root: str, cards: CardStore
    ) -> None:
        self._client = client
        self._catalogue = catalogue
        self._cards = cards
        self.artifact_root = artifact_root.rstrip("/")

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
        client = self._client
        with _all_or_nothing() as undo, translated(f"enregistrement de « {name} »"):
            experiment_id = self._experiment(name)
            run = client.create_run(
                experiment_id, run_name=f"enregistrement-{name}", tags={"bibia.actor": actor}
            )
            run_id = run.info.run_id
            undo.append(lambda: self._drop_run(run_id, run.info.artifact_uri))
            now = int(time.time() * 1000)
            batch = [MlflowMetric(k, float(v), now, 0) for k, v in metrics.items()]
            batch += [
                MlflowMetric(f"baseline.{k}", float(v), now, 0) for k, v in baseline_metrics.items()
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
                (Path(extra) / "README.md").write_text(to_hf_readme(card, name), encoding="utf-8")
                client.log_artifacts(run_id, extra, artifact_path="model")
            client.set_terminated(run_id)

            previous_tags = self._existing_tags(name)
            if previous_tags is None:
                try:
                    client.create_registered_model(name, description=card.identification.summary)
                    undo.append(lambda: client.delete_registered_model(name))
                except MlflowException as exc:  # created concurrently: fine, add a version to it
                    if not already_exists(exc):
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
            self._put_card(name, int(mv.version), card, undo)
            self._write_card_tags(name, card, previous_tags or {}, undo)
            if alias is not None:
                client.set_registered_model_alias(name, alias, mv.version)
            return self._catalogue.version(name, int(mv.version))

    def update_card(self, name: str, card: Card) -> ModelSummary:
        """Replace the card of ``name``: its latest version's (earlier versions keep theirs,
        and every version's ``bibia/card.json`` artifact stays the card it was registered with)."""
        with translated(f"fiche de « {name} »"):
            previous = self._existing_tags(name)
        if previous is None:
            raise NotFound(f"modèle « {name} » introuvable")
        latest = self._catalogue.get(name).latest_version or 0
        with _all_or_nothing() as undo, translated(f"fiche de « {name} »"):
            self._put_card(name, latest, card, undo)
            self._write_card_tags(name, card, previous, undo)
            self._client.update_registered_model(name, description=card.identification.summary)
        return self._catalogue.get(name)

    def move_legacy_cards(self) -> list[str]:
        """Move the cards a catalogue deployed before the card store kept in the ``bibia.card``
        tag into the store (as their model's latest version's card), then drop the tag.

        A model whose store already has a card keeps that one (it is newer). An unreadable
        card stays in its tag (the catalogue reads it as no card, as before). Safe to run at
        every start, by several replicas at once; the names moved.
        """
        found: list[RegisteredModel] = []
        token = None
        with translated("fiches du catalogue"):
            while True:
                page = self._client.search_registered_models(
                    filter_string=f"tags.`{CARD_TAG}` ILIKE '%'", max_results=PAGE, page_token=token
                )
                found.extend(page)
                token = page.token
                if not token:
                    break
        moved = []
        for rm in found:
            latest = max((int(mv.version) for mv in rm.latest_versions or []), default=None)
            try:
                card = Card.model_validate_json(rm.tags[CARD_TAG])
            except ValueError:
                continue
            if latest is None:
                continue
            with translated(f"fiche de « {rm.name} »"):
                if rm.name not in self._cards.latest([rm.name]):
                    self._cards.put(
                        rm.name, latest, card, created=from_millis(rm.creation_timestamp)
                    )
                for key, value in search_tags(card).items():
                    if rm.tags.get(key) != value:
                        self._client.set_registered_model_tag(rm.name, key, value)
                try:
                    self._client.delete_registered_model_tag(rm.name, CARD_TAG)
                except MlflowException as exc:  # another replica moved it first
                    if not does_not_exist(exc):
                        raise
            moved.append(rm.name)
        return moved

    def set_alias(self, name: str, alias: str, version: int) -> VersionInfo:
        """Point ``alias`` at ``version`` of ``name`` (which must exist)."""
        check_name(name)
        check_alias(alias)
        self._catalogue.version(name, version)
        with translated(f"alias « {alias} » de « {name} »"):
            self._client.set_registered_model_alias(name, alias, str(version))
        return self._catalogue.version(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from ``name``; NotFound when it is not set."""
        check_name(name)
        check_alias(alias)
        summary = self._catalogue.get(name)
        if alias not in summary.aliases:
            raise NotFound(f"alias « {alias} » introuvable pour « {name} »")
        with translated(f"alias « {alias} » de « {name} »"):
            self._client.delete_registered_model_alias(name, alias)

    def _experiment(self, name: str) -> str:
        exp_name = f"{EXPERIMENT_PREFIX}{name}"
        found = self._client.get_experiment_by_name(exp_name)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(
                exp_name, artifact_location=f"{self.artifact_root}/{name}"
            )
        except MlflowException as exc:  # created concurrently: use that one
            if not already_exists(exc):
                raise
            created = self._client.get_experiment_by_name(exp_name)
            if created is None:
                raise
            return created.experiment_id

    def _drop_run(self, run_id: str, artifact_uri: str) -> None:
        with contextlib.suppress(Exception):
            get_artifact_repository(artifact_uri).delete_artifacts()  # type: ignore[no-untyped-call]
        self._client.delete_run(run_id)

    def _existing_tags(self, name: str) -> dict[str, str] | None:
        try:
            return dict(self._client.get_registered_model(name).tags)
        except MlflowException as exc:
            if does_not_exist(exc):
                return None
            raise

    def _put_card(self, name: str, version: int, card: Card, undo: Undo) -> None:
        """Keep ``card`` as the card of ``name``/``version`` in the card store."""
        if len(card.model_dump_json()) > 95_000:
            raise InvalidInput(
                "fiche trop volumineuse : 95 000 caractères au plus une fois sérialisée"
            )
        replaced = self._cards.put(name, version, card)

        def restore() -> None:
            if replaced is None:
                self._cards.remove(name, version)
            else:
                self._cards.put(name, version, replaced)

        undo.append(restore)

    def _write_card_tags(self, name: str, card: Card, previous: dict[str, str], undo: Undo) -> None:
        """Mirror the card's searchable fields as tags (a card left in the tag before the
        card store is dropped: the store has the newer one)."""
        client = self._client
        new_tags = search_tags(card)

        def restore() -> None:
            if CARD_TAG in previous:
                client.set_registered_model_tag(name, CARD_TAG, previous[CARD_TAG])
            for key in new_tags:
                if key in previous:
                    client.set_registered_model_tag(name, key, previous[key])
                else:
                    with contextlib.suppress(MlflowException):
                        client.delete_registered_model_tag(name, key)

        undo.append(restore)
        for key, value in new_tags.items():
            client.set_registered_model_tag(name, key, value)
        if CARD_TAG in previous:
            client.delete_registered_model_tag(name, CARD_TAG)
