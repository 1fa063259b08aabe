# The demonstrator image: the demonstrator server (demos/server) and what
# loads a registered MLflow pyfunc model, nothing else.
#
# Built by docker/build-demo-image.sh from a staged context (never the repo
# root): wheels/ (downloaded on the host), demo-requirements.lock,
# demos/__init__.py and demos/server/, and the two pure packages the server
# imports (domain/: the error tree; evaluation/: the French CSV reader). It needs no container registry when
# BASE_IMAGE is the offline base image (docker/build-base-image.sh):
#   --build-arg BASE_IMAGE=bibia/python-base:bookworm
# Runs as uid 10001 on a read-only root filesystem: the runner mounts the
# model at /model (read-only), the socket directory at /run/bibia and a
# tmpfs at /tmp.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
COPY wheels /wheels
COPY demo-requirements.lock /wheels/demo-requirements.lock
# Debian's Python refuses system-wide pip installs: a venv in /opt/venv.
# Test suites of the big packages are never imported at run time.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        -r /wheels/demo-requirements.lock \
 && /opt/venv/bin/pip uninstall -y -q pip \
 && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && for pkg in numpy pandas scipy sklearn matplotlib skops; do \
        find "$site/$pkg" -type d -name tests -prune -exec rm -rf {} + ; \
    done \
 && rm -rf "$site"/matplotlib/mpl-data/sample_data

FROM ${BASE_IMAGE}
COPY --from=build /opt/venv /opt/venv
COPY demos/__init__.py /app/demos/__init__.py
COPY demos/server /app/demos/server
COPY domain /app/domain
COPY evaluation /app/evaluation
RUN /opt/venv/bin/python -m compileall -q /app \
 && mkdir -p /model /run/bibia \
 && chown 10001:10001 /run/bibia
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true \
    BIBIA_MODEL_DIR=/model \
    BIBIA_SOCKET=/run/bibia/demo.sock
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["/opt/venv/bin/python", "-m", "demos.server"]
