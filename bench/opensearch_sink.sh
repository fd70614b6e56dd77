#!/usr/bin/env bash
# opensearch_sink.sh - bulk throughput of the indexer's OpenSearch sink against
# the ceiling of a plain bulk loader on the same server and the same data.
#
# Baseline ("curl"): the sink's own bulk bodies (same builder, same 5 MiB cut),
# written to files beforehand and POSTed to /_bulk by curl, PAR at once
# (xargs -P, at PAR and at 2 x PAR; the best of all is the ceiling), responses
# checked for "errors":false. Nothing is built or parsed
# by the loader: the best a client can do is keep PAR requests in flight.
# Sink: bench/opensearch_sink.c writes the same events through
# lh_sink_write in batches, and measures its own CPU with getrusage.
# Each run goes into fresh indices (deleted afterwards) and runs alternate
# (curl, sink, curl, sink ...) so that drift on the machine hits both.
#
# Needs a running OpenSearch (tests/services/opensearch start) and `make`.
# usage: bench/opensearch_sink.sh [EVENTS=300000] [ROUNDS=3]
# env:   URL=http://127.0.0.1:9200 BATCH=50000 (events per write) PAR=2
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EVENTS="${1:-300000}"
ROUNDS="${2:-3}"
URL="${URL:-http://127.0.0.1:${LOGHAUL_OPENSEARCH_PORT:-9200}}"
BATCH="${BATCH:-50000}"
PAR="${PAR:-2}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lh-bench-os-XXXXXX")"
trap 'rm -rf "$WORK"; curl -s -XDELETE "$URL/benchc-*,benchs-*" >/dev/null || true' EXIT

curl -fs "$URL/" >/dev/null || { echo "no OpenSearch at $URL (tests/services/opensearch start)" >&2; exit 1; }
[ -f build/lib/libindexer.a ] || make -j2 >/dev/null
# shellcheck disable=SC2046
cc -O2 -std=c11 -D_GNU_SOURCE -pthread -Icommon/include bench/opensearch_sink.c \
    build/lib/libindexer.a build/lib/libloghaul.a \
    $(pkg-config --libs libuv libcurl openssl yaml-0.1 jansson libzstd rdkafka libpcre2-8 zlib) \
    -lhttp_parser -ldeflate -lisal -lm -o "$WORK/driver"

echo "generating $EVENTS events into bulk bodies..."
"$WORK/driver" gen --count "$EVENTS" --prefix benchc --out "$WORK/bodies" --url "$URL"
BYTES=$(cat "$WORK"/bodies/*.ndjson | wc -c)

# Every run starts from the same server state: no index of ours, and a few
# seconds for merges of the previous run's deleted indices to stop.
reset_indices() {
    curl -s -XDELETE "$URL/benchc-*,benchs-*" >/dev/null
    sleep 5
}

curl_run() {  # PAR
    reset_indices
    local t0 t1
    t0=$(date +%s.%N)
    find "$WORK/bodies" -name '*.ndjson' | sort | xargs -P "$1" -I{} \
        curl -s -o {}.resp -H 'Content-Type: application/x-ndjson' \
        --data-binary @{} "$URL/_bulk?filter_path=errors"
    t1=$(date +%s.%N)
    if grep -L '"errors":false' "$WORK"/bodies/*.resp | grep -q .; then
        echo "curl: a bulk request had errors" >&2
        exit 1
    fi
    rm -f "$WORK"/bodies/*.resp
    curl -s -XPOST "$URL/benchc-*/_refresh" >/dev/null
    local n
    n=$(curl -s "$URL/benchc-*/_count" | sed -E 's/.*"count":([0-9]+).*/\1/')
    [ "$n" = "$EVENTS" ] || { echo "curl: count $n, expected $EVENTS" >&2; exit 1; }
    awk -v t0="$t0" -v t1="$t1" -v n="$EVENTS" -v b="$BYTES" \
        'BEGIN { s = t1 - t0; printf "seconds %.3f events/s %.0f MB/s %.2f\n", s, n / s, b / s / 1e6 }'
}

sink_run() {
    reset_indices
    "$WORK/driver" sink --count "$EVENTS" --prefix benchs --batch "$BATCH" \
        --concurrency "$PAR" --url "$URL" "$@"
    curl -s -XPOST "$URL/benchs-*/_refresh" >/dev/null
    local n
    n=$(curl -s "$URL/benchs-*/_count" | sed -E 's/.*"count":([0-9]+).*/\1/')
    [ "$n" = "$EVENTS" ] || { echo "sink: count $n, expected $EVENTS" >&2; exit 1; }
}

echo "events $EVENTS, bulk bytes $BYTES, concurrency $PAR, sink batch $BATCH events"
# The machine may be shared: each round's sink figure is set against the curl
# runs of the same round (ratio to the better of them); the median of those
# ratios is the result, best-of figures are printed beside it.
best_curl=0 best_sink=0 ratios=""
for r in $(seq "$ROUNDS"); do
    round_curl=0
    for p in "$PAR" $((PAR * 2)); do
        c=$(curl_run "$p")
        echo "round $r  curl -P$p: $c"
        round_curl=$(awk -v a="$round_curl" -v l="$c" 'BEGIN { split(l, f, " "); print (f[4] > a ? f[4] : a) }')
    done
    s=$(sink_run)
    echo "round $r  sink:     $s"
    se=$(awk -v l="$s" 'BEGIN { split(l, f, " "); print f[8] }')
    ratios="$ratios $(awk -v s="$se" -v c="$round_curl" 'BEGIN { printf "%.3f", s / c }')"
    best_curl=$(awk -v a="$best_curl" -v b="$round_curl" 'BEGIN { print (b > a ? b : a) }')
    best_sink=$(awk -v a="$best_sink" -v b="$se" 'BEGIN { print (b > a ? b : a) }')
done
g=$(sink_run --gzip)
echo "gzip      sink:     $g"
echo "sink / curl ceiling per round:$ratios"
echo "$ratios" | tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "median: sink at %.1f%% of the curl ceiling\n", 100 * m }'
awk -v c="$best_curl" -v s="$best_sink" \
    'BEGIN { printf "best events/s: curl %.0f, sink %.0f\n", c, s }'
