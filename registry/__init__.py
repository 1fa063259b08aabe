"""The catalogue on MLflow: card schema, tiers, field filtering, the registry façade.

``registry.store.Registry`` composes the parts that talk to MLflow: the
catalogue's reads, the registration, the artifact cache and MLflow's REST
shapes, over one client (``registry.mlflow_client``); the match count's use
of MLflow internals is ``registry.mlflow_count``. Ruff's banned-API rule
keeps MLflow's client and internals in those modules, and import-linter
keeps :mod:`bibia` out of this package.
"""
