"""The registry façade: one MLflow client, shared by the registry's four parts.

MLflow holds registered models, versions, aliases, tags, metrics and
artifacts; :mod:`registry.entries` says how bibia keeps a card in them.
Each job has its module: :mod:`registry.catalogue` (reads),
:mod:`registry.registration` (writes), :mod:`registry.artifacts` (the local
copy of a version), :mod:`registry.mlflow_rest` (MLflow's REST shapes for
the gateway). The service holds one :class:`Registry` and calls its verbs,
which are the parts' own methods.
"""

from __future__ import annotations

from pathlib import Path

from registry.artifacts import Artifacts
from registry.cards import CardStore
from registry.catalogue import Catalogue
from registry.mlflow_client import connect
from registry.mlflow_rest import MlflowRest
from registry.registration import Registration


class Registry:
    """The catalogue on MLflow.

    Args:
        tracking_uri: MLflow backend store URI (``sqlite:///...``, ``postgresql+psycopg://...``)
            or an MLflow tracking server URL.
        artifact_root: where new experiments keep their artifacts (``file:///...`` or ``s3://...``).
        cache_dir: local directory for immutable copies of version artifacts.
        cards: where versions' cards are kept (bibia's database; see :mod:`registry.cards`).
    """

    def __init__(
        self, tracking_uri: str, artifact_root: str, cache_dir: Path, cards: CardStore
    ) -> None:
        self._client = connect(tracking_uri)  # the one client the parts share
        self.cards = cards
        catalogue = Catalogue(self._client, cards)
        registration = Registration(self._client, catalogue, artifact_root, cards)
        artifacts = Artifacts(catalogue, cache_dir)
        rest = MlflowRest(self._client)

        self.ping = catalogue.ping
        self.search = catalogue.search
        self.search_page = catalogue.search_page
        self.summaries_of = catalogue.summaries_of
        self.recent = catalogue.recent
        self.get = catalogue.get
        self.exists = catalogue.exists
        self.versions = catalogue.versions
        self.version = catalogue.version
        self.resolve = catalogue.resolve

        self.register = registration.register
        self.update_card = registration.update_card
        self.set_alias = registration.set_alias
        self.delete_alias = registration.delete_alias
        self.move_legacy_cards = registration.move_legacy_cards

        self.local_copy = artifacts.local_copy
        self.local_copy_of = artifacts.local_copy_of
        self.check_artifacts_readable = artifacts.check_readable
        self.list_artifacts = artifacts.list_artifacts
        self.artifact_path = artifacts.artifact_path

        self.rest_registered_model = rest.registered_model
        self.rest_model_version = rest.model_version
        self.rest_version_by_alias = rest.version_by_alias
        self.rest_search = rest.search
