"""The demonstrator server: runs INSIDE a sandbox, next to one MLflow model.

``python -m demos.server`` loads the model found in ``BIBIA_MODEL_DIR`` and
serves, on the Unix socket ``BIBIA_SOCKET`` only, French web pages (the model
on its sample data, a CSV upload) and a JSON prediction API compatible with
MLflow's scoring server. It imports neither :mod:`bibia`, :mod:`registry`,
:mod:`runners` nor :mod:`docker`: the image holds this package alone.
"""
