"""The catalogue on MLflow: card schema, tiers, field filtering, the facade.

``registry.store`` is the only module of the project that imports MLflow's
tracking/registry client. Nothing here imports :mod:`bibia`.
"""
