# The bibia service image: `bibia serve` and the CLI, nothing else.
#
# Built by docker/build-service-images.sh from a staged context (never the
# repo root): wheels/ (the service's dependencies pinned by requirements.lock,
# downloaded on the host), requirements.txt (those pins), app/ (bibia's
# packages: bibia, domain, registry, runners, demos, evaluation), assets/ (the
# Swagger UI and ReDoc files bibia serves) and service-entrypoint.sh. No
# registry is needed with BASE_IMAGE=bibia/python-base:bookworm (the default
# here: the scripts build it from Debian packages).
# Runs as root: the Docker runner mounts a tmpfs on each sandbox's socket
# directory (CAP_SYS_ADMIN), and a container holding the engine's socket is
# root-equivalent on the engine's host anyway (see docker/compose.yaml).
ARG BASE_IMAGE=bibia/python-base:bookworm

FROM ${BASE_IMAGE} AS build
COPY wheels /wheels
COPY requirements.txt /wheels/requirements.txt
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        -r /wheels/requirements.txt \
 && /opt/venv/bin/pip uninstall -y -q pip \
 && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && for pkg in numpy pandas scipy sklearn matplotlib; do \
        find "$site/$pkg" -type d -name tests -prune -exec rm -rf {} + ; \
    done \
 && rm -rf "$site"/matplotlib/mpl-data/sample_data

FROM ${BASE_IMAGE}
COPY --from=build /opt/venv /opt/venv
COPY app /app
COPY assets /opt/bibia/assets
COPY service-entrypoint.sh /usr/local/bin/bibia-entrypoint
RUN /opt/venv/bin/python -m compileall -q /app \
 && printf '#!/bin/sh\nexec /opt/venv/bin/python -m bibia "$@"\n' >/usr/local/bin/bibia \
 && chmod 755 /usr/local/bin/bibia /usr/local/bin/bibia-entrypoint \
 && mkdir -p /var/lib/bibia
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    BIBIA_DATA_DIR=/var/lib/bibia \
    BIBIA_ASSETS_DIR=/opt/bibia/assets
WORKDIR /var/lib/bibia
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/bibia-entrypoint"]
CMD ["bibia", "serve", "--host", "0.0.0.0", "--port", "8000"]
