# The reverse proxy: Debian's nginx (nginx-light) on the offline base image (no
# registry), TLS in front of the bibia replicas. Built by
# docker/build-service-images.sh; the certificate and its key are secret files
# (/run/secrets/tls_certificate, /run/secrets/tls_key), never in the image.
ARG BASE_IMAGE=bibia/python-base:bookworm
FROM ${BASE_IMAGE}
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    /etc/nginx/sites-enabled/* /etc/nginx/conf.d/*
COPY nginx.conf /etc/nginx/nginx.conf
EXPOSE 443
STOPSIGNAL SIGQUIT
ENTRYPOINT ["nginx", "-g", "daemon off;"]
