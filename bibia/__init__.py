"""bibia — Bibliothèque IA territorialisée: the service, its CLI and its database."""

__version__ = "0.1.0"
