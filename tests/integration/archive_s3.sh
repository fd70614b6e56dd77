#!/usr/bin/env bash
# archive_s3.sh - the S3 archive backend against real MinIO: the shared
# instance on 127.0.0.1:9000 (tests/services/s3) for everything, and a
# second, private instance with a KMS key for SSE-S3 (MinIO refuses
# x-amz-server-side-encryption without one). The second copy runs through
# the same service script on another port and state directory, and is
# stopped again at the end.
# services: s3
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
sse_port=${LOGHAUL_S3_SSE_PORT:-9010}
sse_dir=${TMPDIR:-/tmp}/loghaul-services-sse
sse_env=(LOGHAUL_S3_PORT="$sse_port" LOGHAUL_SERVICES_DIR="$sse_dir")

stop_sse() { env "${sse_env[@]}" tests/services/s3 stop >/dev/null 2>&1 || true; }
trap stop_sse EXIT
# a fresh state each time: the KMS key is new on every run
env "${sse_env[@]}" LOGHAUL_SERVICES_FRESH=1 \
    MINIO_KMS_SECRET_KEY="loghaul-test:$(head -c 32 /dev/urandom | base64)" \
    tests/services/s3 start

LOGHAUL_S3_SSE_ENDPOINT="http://127.0.0.1:$sse_port" "$BUILD"/tests/archive_s3
