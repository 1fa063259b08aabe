"""Reference models and the demonstrator server.

Nothing here imports :mod:`bibia` (the service) or :mod:`docker`: the
reference models only build MLflow model directories, and the demonstrator
server runs inside a sandbox.
"""
