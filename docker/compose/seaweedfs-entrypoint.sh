#!/bin/sh
# weed server -s3 as the weed user, data in /data; the S3 identities from the
# secret file (copied where only weed reads it); the buckets named in
# SEAWEEDFS_BUCKETS created once the store answers.
set -eu
config_file="${SEAWEEDFS_S3_CONFIG_FILE:-/run/secrets/seaweedfs_s3_config}"
[ -s "$config_file" ] || { echo "seaweedfs: no S3 configuration in $config_file" >&2; exit 1; }
mkdir -p /data/store /run/weed
install -o weed -m 0600 "$config_file" /run/weed/s3.json
chown weed /data/store /run/weed
setpriv --reuid=weed --regid=weed --init-groups -- \
    weed server -dir=/data/store -ip=127.0.0.1 -ip.bind=0.0.0.0 \
    -master.volumeSizeLimitMB="${SEAWEEDFS_VOLUME_MB:-1024}" -volume.max=0 -volume.preStopSeconds=1 \
    -s3 -s3.port=8333 -s3.config=/run/weed/s3.json -s3.port.iceberg=0 -s3.port.lance=0 &
weed_pid=$!
# A stop (compose sends TERM to this script, pid 1) stops weed and ends here, even while
# the buckets are still being created.
trap 'kill -TERM "$weed_pid" 2>/dev/null; wait "$weed_pid"; exit 0' TERM INT
has_bucket() { echo "s3.bucket.list" | weed shell -master=127.0.0.1:9333 2>/dev/null | grep -qw "$1"; }
for bucket in ${SEAWEEDFS_BUCKETS:-}; do
    tries=0
    until has_bucket "$bucket"; do
        echo "s3.bucket.create -name $bucket" | weed shell -master=127.0.0.1:9333 >/dev/null 2>&1 || true
        tries=$((tries + 1))
        [ "$tries" -lt 120 ] || { echo "seaweedfs: bucket $bucket not created" >&2; exit 1; }
        sleep 1
    done
    echo "seaweedfs: bucket $bucket ready" >&2
done
wait "$weed_pid"
