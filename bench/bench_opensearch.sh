#!/usr/bin/env bash
# bench_opensearch.sh - OpenSearch (tests/services/opensearch, 127.0.0.1:9200 or LOGHAUL_OPENSEARCH_PORT)
# as loghaul's scaled-out hot store, on the same data set as the embedded
# store: every record of the generated file, parsed by the indexer's parse
# stage and given the ids bench/stages.c gives the store's events, as the
# sink's documents in one daily index <prefix>-bench-YYYY.MM.DD with the
# sink's template (strict mapping, flat_object metadata, best_compression,
# 1 shard, 0 replicas, refresh 5s; request cache off, so repeated
# aggregations are computed and not replayed), bulk-loaded once by curl with
# 2 requests in flight. Measured on that load: raw MB/s of the bulk load (the
# ceiling any sink can reach on this server), raw MB per OpenSearch
# CPU-second (the JVM's /proc stat over the load, refresh, flush and force
# merge) and bytes on disk per raw byte, hot (after refresh+flush) and
# settled (force merge to 1 segment). Then the store's queries (a)-(d)
# through queryd's OpenSearch backend (bench/stages.c osquery), RUNS times,
# answers checked against the manifest and the store's answers of this run
# (bench_stages.sh writes them).
# When the indexer's OpenSearch sink is on main, the sink alone is measured
# against the ceiling of a plain loader (indexer.opensearch.*):
# bench/opensearch_sink.c (the sink's bench driver) builds the sink's bulk
# bodies for its generated events; per round, curl posts them (2 in flight)
# into fresh indices, then the sink writes the same events (batches of 50000,
# concurrency 2) into other fresh indices; ratio = sink events/s / curl
# events/s of the round.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

URL=${OPENSEARCH_URL:-$OS_URL}
W="$WORK/opensearch"
NQ=$([ "$QUICK" = 1 ] && echo 20 || echo 50)

SINK=0
if [ -f "$ROOT/indexer/sink_opensearch.h" ] && [ -f "$ROOT/bench/opensearch_sink.c" ]; then
    SINK=1
else
    for f in indexer.opensearch.mb_s indexer.opensearch.ratio_to_ceiling; do
        skip "$f" "the indexer's OpenSearch sink is not on main yet (branch ossink)"
    done
fi
if ! wait_service opensearch "$SERVICE_WAIT"; then
    for f in opensearch.size_ratio opensearch.size_ratio_hot opensearch.index_mb_s_per_core \
             baseline.opensearch.curl_bulk_mb_s "opensearch.query_*"; do
        skip "$f" "OpenSearch is not running on $URL (tests/services/opensearch start failed or timed out)"
    done
    exit 0
fi

rm -rf "$W" && mkdir -p "$W"
QP="lhbench$$q"
QDAY=$(python3 -c 'import json,sys,time; print(time.strftime("%Y.%m.%d", time.gmtime(json.load(open(sys.argv[1]))["start_ns"] // 10**9)))' "$MANIFEST")
INDEX="$QP-bench-$QDAY"
cleanup_index() {
    curl -s -XDELETE "$URL/$INDEX" >/dev/null || true
    curl -s -XDELETE "$URL/_index_template/$QP-logs" >/dev/null || true
}
trap cleanup_index EXIT
if [ "$SINK" = 1 ]; then
    # shellcheck disable=SC2046
    cc -O2 -std=c11 -D_GNU_SOURCE -pthread -I"$ROOT/common/include" "$ROOT/bench/opensearch_sink.c" \
        "$BUILD/lib/libindexer.a" "$BUILD/lib/libloghaul.a" \
        $(pkg-config --libs libuv libcurl openssl yaml-0.1 jansson libzstd rdkafka libpcre2-8 zlib) \
        -lhttp_parser -ldeflate -lisal -lm -o "$BB/opensearch_sink"
    # The sink's own template for the index (prefix $QP).
    "$BB/opensearch_sink" gen --count 1 --prefix "$QP" --out "$W/tpl" --url "$URL" >/dev/null
fi
START_NS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["start_ns"])' "$MANIFEST")
# --quick: the first fifth of the data set's time span (~20 MB; OpenSearch
# spends about a JVM CPU-second per raw MB indexing it, too much for the quick
# run's budget at 100 MB). The records are in time order, so the events
# before SAMPLE_END are a prefix of the file; the store answers the same
# sample by asking for the events before SAMPLE_END.
SAMPLE_END=""
if [ "$QUICK" = 1 ]; then
    SAMPLE_END=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); s=(m["end_ns"]-m["start_ns"])//10**9; print(m["start_ns"] + max(1, s//5) * 10**9)' "$MANIFEST")
fi
info=$("$BB/stages" bulk --data "$DATA" --out "$W/bodies" --index "$INDEX" --max-mb 1e12 \
    --body-mb 5 --patterns "$ROOT/config/patterns" --start-ns "$START_NS" ${SAMPLE_END:+--end-ns "$SAMPLE_END"})
EVENTS=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["events"])' "$info")
RAW=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["raw_bytes"])' "$info")
log "$EVENTS events, $(calc "$RAW / 1e6") MB raw, in $(ls "$W/bodies" | wc -l) bulk bodies"

# With the sink's template installed, the index takes its mappings and
# settings from it; either way the store size stats are not cached (their
# default 10 s cache would report sizes from before the force merge).
if [ "$SINK" = 1 ]; then
    echo '{"settings":{"index.store.stats_refresh_interval":"0ms","index.requests.cache.enable":false}}' \
        >"$W/index.json"
else
    # Without the sink on main: the sink's mapping (branch ossink), written out.
    cat >"$W/index.json" <<'EOF'
{"settings":{"index":{"number_of_shards":1,"number_of_replicas":0,"refresh_interval":"5s",
  "codec":"best_compression","store.stats_refresh_interval":"0ms","requests.cache.enable":false}},
 "mappings":{"dynamic":"strict","properties":{
  "timestamp":{"type":"date"},
  "id":{"type":"keyword"},"tenant":{"type":"keyword"},"service":{"type":"keyword"},
  "level":{"type":"keyword"},"host":{"type":"keyword"},"trace_id":{"type":"keyword"},
  "span_id":{"type":"keyword"},"user_id":{"type":"keyword"},"stream":{"type":"keyword"},
  "container_id":{"type":"keyword"},"region":{"type":"keyword"},"file":{"type":"keyword"},
  "message":{"type":"text","analyzer":"standard","norms":false},
  "raw":{"type":"text","analyzer":"standard","index_options":"docs","norms":false},
  "k8s":{"properties":{"namespace":{"type":"keyword"},"pod":{"type":"keyword"},
                       "container":{"type":"keyword"}}},
  "custom_metadata":{"type":"flat_object"}}}}
EOF
fi

store_bytes() {
    curl -fs "$URL/$INDEX/_stats/store" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["_all"]["primaries"]["store"]["size_in_bytes"])'
}

# ---- one load of the whole data set: indexing cost and size -------------------
export RUN_NO=1
curl -s -XDELETE "$URL/$INDEX" >/dev/null
curl -fs -XPUT "$URL/$INDEX" -H 'Content-Type: application/json' --data-binary @"$W/index.json" \
    >/dev/null || { log "index creation failed"; exit 1; }
ospid=$(service_pid opensearch) c0=""
[ -n "$ospid" ] && c0=$(cpu_s "$ospid")
tl0=$(date +%s.%N)
find "$W/bodies" -name '*.ndjson' | sort | xargs -P 2 -I{} \
    curl -s -o {}.resp -H 'Content-Type: application/x-ndjson' --data-binary @{} \
    "$URL/_bulk?filter_path=errors"
tl1=$(date +%s.%N)
if grep -L '"errors":false' "$W"/bodies/*.resp | grep -q .; then
    log "a bulk request had errors:"
    head -c 600 "$(grep -L '"errors":false' "$W"/bodies/*.resp | head -1)" >&2
    exit 1
fi
rm -rf "$W/bodies"
curl -fs -XPOST "$URL/$INDEX/_refresh" >/dev/null
n=$(curl -fs "$URL/$INDEX/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[ "$n" = "$EVENTS" ] || { log "count $n, expected $EVENTS"; exit 1; }
curl -fs -XPOST "$URL/$INDEX/_flush?wait_if_ongoing=true" >/dev/null
hot=$(store_bytes)
curl -fs -XPOST "$URL/$INDEX/_forcemerge?max_num_segments=1" >/dev/null
# The merged-away segments' files go once no searcher holds them.
curl -fs -XPOST "$URL/$INDEX/_refresh" >/dev/null
curl -fs -XPOST "$URL/$INDEX/_flush?wait_if_ongoing=true&force=true" >/dev/null
settled=$(store_bytes)
for _ in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.5
    s2=$(store_bytes)
    [ "$s2" = "$settled" ] && break
    settled=$s2
done
LOAD_S=$(calc "round($(date +%s.%N) - $tl0)")
emit baseline.opensearch.curl_bulk_mb_s "$(calc "$RAW / 1e6 / ($tl1 - $tl0)")" "MB/s"
emit opensearch.size_ratio_hot "$(calc "$hot / $RAW")" "x raw"
emit opensearch.size_ratio "$(calc "$settled / $RAW")" "x raw"
c1=""
[ -n "$ospid" ] && c1=$(cpu_s "$ospid")
if [ -n "$c0" ] && [ -n "$c1" ]; then
    emit opensearch.index_mb_s_per_core "$(calc "$RAW / 1e6 / max($c1 - $c0, 1e-3)")" "MB/s per core"
fi
log "loaded, refreshed, flushed and force merged in $LOAD_S s"

# ---- (a)-(d): the store's queries, as queryd's OpenSearch backend asks them ---
# The store's answers of this bench/run (bench_stages.sh): of the whole data
# set, or for the sample asked of the store it left in $WORK/stages-store.
ANSWERS="$WORK/store-answers.txt"
if [ -n "$SAMPLE_END" ]; then
    ANSWERS="$W/sample-answers.txt"
    if [ -d "$WORK/stages-store" ] && [ "$WORK/stages-store" -nt "$OUT/machine.json" ]; then
        "$BB/stages" query --dir "$WORK/stages-store" --manifest "$MANIFEST" --data "$DATA" --n "$NQ" \
            --nbase 0 --end-ns "$SAMPLE_END" --answers "$ANSWERS" >/dev/null 2>>"$W/osquery.log" ||
            log "the store's answers for the sample: see $W/osquery.log"
    fi
fi
if [ ! -s "$ANSWERS" ] || [ "$ANSWERS" -ot "$OUT/machine.json" ]; then
    log "no store answers of this run ($ANSWERS): run the stages benchmark first to compare answers"
    ANSWERS=/dev/null
fi
: >"$OUT/latency-os-queries.dat"
for r in $(seq "$RUNS"); do
    export RUN_NO=$r
    log "queries, run $r/$RUNS"
    lat=""
    [ "$r" = 1 ] && lat="$OUT/latency-os-queries.dat"
    "$BB/stages" osquery --url "$URL" --index "$QP" --manifest "$MANIFEST" --n "$NQ" \
        ${lat:+--lat "$lat"} --answers "$ANSWERS" ${SAMPLE_END:+--end-ns "$SAMPLE_END"} \
        2>>"$W/osquery.log" | emit_lines || true
done
plot latency latency-os-queries.dat "(a)-(d) through the queryd OpenSearch backend (run 1)"
cleanup_index
trap - EXIT
# Wrong answers per kind, from the first run's log.
WRONG=$(python3 - "$W/osquery.log" <<'PY'
import collections, re, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"stages: opensearch answered 'search (\w+) ", line) or \
        re.match(r"stages: opensearch (?:level|')?.*?(hour|level)", line)
    if m:
        c[m.group(1)] += 1
print(", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none")
PY
)
if [ "$ANSWERS" != /dev/null ] && grep -q 'answers compared with' "$W/osquery.log"; then
    QCHECK="answers checked against $([ -n "$SAMPLE_END" ] && echo "the store's answers for the same sample" || echo "the manifest's counts and the store's answers") of this run (hit count, total, first and last id of the page; the hour's count and per-level counts); differing from the store's (or the manifest), over all runs: $WRONG"
else
    QCHECK="answers checked against the manifest's counts only (the stages benchmark did not run first: no store answers)"
fi
if [ -n "$SAMPLE_END" ]; then
    SAMPLE="a sample (--quick), the first $(calc "round(($SAMPLE_END - $START_NS) / 1e9)") s of the data set's $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(round((m["end_ns"]-m["start_ns"])/1e9))' "$MANIFEST") s: all $EVENTS events before then ($(calc "round($RAW / 1e6)") MB raw, a prefix of the file; OpenSearch indexes at about a JVM CPU-second per raw MB here, 100 MB is beyond the quick run's budget), the store answering the same sample for the comparison of answers (its queries bounded to the events before then); the store's latency figures in 2d are over all $(calc "round($(stat -c %s "$DATA") / 1e6)") MB, grep's over the whole file, so the store/OpenSearch ratios there are against an index of a fifth of the data"
else
    SAMPLE="all $EVENTS events of the generated data set ($(calc "round($RAW / 1e6)") MB raw)"
fi
note "One load of $SAMPLE. The events are those the store holds (parsed by the indexer's parse stage, same ids), as the sink's documents (message and raw as text, the rest keywords, metadata flat_object), bulk-loaded by curl, refreshed, flushed and force merged to 1 segment in $LOAD_S s; the size and indexing figures come from that one load. OpenSearch 2.19 with a 512 MB heap shares the machine (its JVM's CPU also counts any other client's work during the run)."
note "Queries (a)-(d) on that index, request cache off: the same $NQ trace ids, $NQ rare words, $NQ common-word searches and $NQ 1-hour counts by level as the store's, per run, through queryd's OpenSearch backend (its Query DSL: per word match on message and raw + term on trace_id, user_id, host and metadata values; sort timestamp desc, size 101; track_total_hits exact for (a)/(b), 10,001 for (c); date_histogram of 1 h + terms on level for (d)), after one untimed warm-up query; $QCHECK. Trace ids written tr_<id> (the app format) are one token for OpenSearch's standard analyzer and the grok keeps the prefix in trace_id, so a full-text trace id search finds only the other formats' records there; the store splits tokens at '_'."

# The sink alone against the curl ceiling.
if [ "$SINK" = 1 ]; then
    SEV=$([ "$QUICK" = 1 ] && echo 6000 || echo 100000)
    "$BB/opensearch_sink" gen --count "$SEV" --prefix lhbc --out "$W/sb" --url "$URL" >"$W/sgen.log" 2>&1
    SBYTES=$(cat "$W"/sb/*.ndjson | wc -c)
    for r in $(seq "$RUNS"); do
        export RUN_NO=$r
        curl -s -XDELETE "$URL/lhbc-*,lhbs-*" >/dev/null
        t0=$(date +%s.%N)
        find "$W/sb" -name '*.ndjson' | sort | xargs -P 2 -I{} curl -s -o {}.resp \
            -H 'Content-Type: application/x-ndjson' --data-binary @{} "$URL/_bulk?filter_path=errors"
        t1=$(date +%s.%N)
        if grep -L '"errors":false' "$W"/sb/*.resp | grep -q .; then log "curl: bulk errors"; exit 1; fi
        rm -f "$W"/sb/*.resp
        line=$("$BB/opensearch_sink" sink --count "$SEV" --prefix lhbs --batch 50000 --concurrency 2 \
            --url "$URL" 2>"$W/sink.err") || { log "sink failed"; tail -5 "$W/sink.err" >&2; exit 1; }
        # "events N written N seconds S events/s E MB/s M cpu_s C cpu_share X"
        read -r se smb scpu < <(awk '{ for (i = 1; i < NF; i++) { if ($i == "events/s") e = $(i + 1);
            if ($i == "MB/s") m = $(i + 1); if ($i == "cpu_s") c = $(i + 1) } } END { print e, m, c }' <<<"$line")
        ce=$(calc "$SEV / ($t1 - $t0)")
        emit indexer.opensearch.mb_s "$smb" "MB/s"
        emit baseline.opensearch.sink_bodies_curl_mb_s "$(calc "$SBYTES / 1e6 / ($t1 - $t0)")" "MB/s"
        emit indexer.opensearch.ratio_to_ceiling "$(calc "$se / $ce")" "x ceiling"
        emit indexer.opensearch.mb_s_per_core "$(calc "$SBYTES / 1e6 / max($scpu, 1e-3)")" "MB/s per core"
    done
    curl -s -XDELETE "$URL/lhbc-*,lhbs-*" >/dev/null
    for t in lhbc-logs lhbs-logs; do
        curl -s -XDELETE "$URL/_index_template/$t" >/dev/null || true
    done
    note "OpenSearch sink: $SEV events of bench/opensearch_sink.c ($(calc "round($SBYTES / 1e6)") MB of bulk bodies) per round; curl first, then the sink, each into fresh indices."
fi
rm -rf "$W"
