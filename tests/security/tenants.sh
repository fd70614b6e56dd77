#!/usr/bin/env bash
# tests/security/tenants.sh - no cross-tenant read or write, through the real
# collector -> bus -> indexer -> hot store -> queryd.
# Tenants: acme (two ingest tokens), acme-eu (a name that starts with
# another tenant's: index and directory prefixes must not mix them) and
# globex; one queryd token each. tenants_check.py runs the matrix:
#   ingest: 6 credentials (4 tokens, an unknown one, none) x 5 X-Log-Tenant
#           choices (none, each tenant, a nonexistent one), alternating the
#           X-Log-Shipper-Token and Bearer styles: allowed -> 200 and the
#           event lands in that tenant only, another tenant -> 403, unknown
#           or no credentials -> 401; a body claiming another tenant
#           ("tenant" keys) still lands in the token's tenant;
#   query:  per tenant token: match-all search (exactly its own events;
#           also over 60 days, where OpenSearch queries <prefix>-acme-*,
#           which matches acme-eu's indices too; also with an X-Log-Tenant
#           header naming each other tenant), every foreign marker as full
#           text (0 hits), service filters, aggregate totals, histogram and
#           top values, live tail while all tenants ingest, a tail resuming
#           from another tenant's Last-Event-ID, a cursor of one tenant
#           replayed by another (403, no hits), unknown/missing/ingest tokens
#           (401 on search, aggregate, tail), a `tenant` filter (400).
# Also: one token in two tenants is a config error in both daemons, and the
# store on disk holds each tenant's events under its own name.
# Pass 1: embedded store. Pass 2 (OpenSearch as hot store and queryd
# backend): the same matrix. About 15 s.
# services: opensearch
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/seclib.sh"

RUN_ID="sec$$$RANDOM"
OS_URL="${LOGHAUL_OPENSEARCH_URL:-http://127.0.0.1:9200}"
OS_PREFIX=""
cleanup_os() {  # what this run created in the shared OpenSearch
    [ -n "$OS_PREFIX" ] || return 0
    curl -s -X DELETE "$OS_URL/$OS_PREFIX-*" >/dev/null
    curl -s -X DELETE "$OS_URL/_index_template/$OS_PREFIX" >/dev/null
}
trap 'cleanup_os; lh_cleanup' EXIT

tenants_yaml() {  # KIND (ingest|query): the tenants section
    if [ "$1" = ingest ]; then
        cat <<EOT
tenants:
  - { name: acme, tokens: [ing-acme-one, ing-acme-two] }
  - { name: acme-eu, tokens: [ing-acme-eu] }
  - { name: globex, tokens: [ing-globex] }
EOT
    else
        cat <<EOT
tenants:
  - { name: acme, tokens: [q-acme-token] }
  - { name: acme-eu, tokens: [q-acme-eu-token] }
  - { name: globex, tokens: [q-globex-token] }
EOT
    fi
}
cat >"$WORK/spec.json" <<EOT
{"tenants": {"acme": {"ingest": ["ing-acme-one", "ing-acme-two"], "query": "q-acme-token"},
             "acme-eu": {"ingest": ["ing-acme-eu"], "query": "q-acme-eu-token"},
             "globex": {"ingest": ["ing-globex"], "query": "q-globex-token"}}}
EOT

say "one token in two tenants is refused by the collector and queryd"
cat >"$WORK/dup-c.yaml" <<EOT
tenants: [ { name: a, tokens: [shared-token-1] }, { name: b, tokens: [shared-token-1] } ]
bus: { type: spool, topic: logs, spool: { dir: $WORK/dup-spool } }
EOT
cat >"$WORK/dup-q.yaml" <<EOT
tenants: [ { name: a, tokens: [shared-token-1] }, { name: b, tokens: [shared-token-1] } ]
tiers: [ { type: store, store: { dir: $WORK/dup-store } } ]
EOT
"$BUILD/loghaul-collector" -c "$WORK/dup-c.yaml" --check-config >"$WORK/dup.out" 2>&1 \
    && fail "collector accepted a token shared by two tenants"
grep -q "also belongs to" "$WORK/dup.out" || { cat "$WORK/dup.out"; fail "collector: reason"; }
"$BUILD/loghaul-queryd" -c "$WORK/dup-q.yaml" --check-config >"$WORK/dup.out" 2>&1 \
    && fail "queryd accepted a token shared by two tenants"
grep -q "given twice" "$WORK/dup.out" || { cat "$WORK/dup.out"; fail "queryd: reason"; }

# run_pass NAME: collector (spool) + indexer + queryd with the hot store of
# pass NAME (store | opensearch), then the matrix.
run_pass() {
    local pass="$1" d="$WORK/$1"
    local cport iport qport sink tier
    cport=$(free_port) iport=$(free_port) qport=$(free_port)
    mkdir -p "$d"
    if [ "$pass" = store ]; then
        sink="{ name: store, type: store, store: { dir: $d/store } }"
        tier="{ type: store, store: { dir: $d/store } }"
    else
        OS_PREFIX="lh-$RUN_ID"
        sink="{ name: os, type: opensearch, opensearch: { urls: [$OS_URL], index_prefix: $OS_PREFIX, template: { name: $OS_PREFIX, refresh_interval: 200ms, shards: 1, replicas: 0 } } }"
        tier="{ type: opensearch, opensearch: { urls: [$OS_URL], index_prefix: $OS_PREFIX } }"
    fi
    { echo "listen: { address: 127.0.0.1:$cport }"; tenants_yaml ingest
      echo "bus: { type: spool, topic: logs, spool: { dir: $d/spool } }"; } >"$d/collector.yaml"
    cat >"$d/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$iport }
bus: { type: spool, topic: logs, dlq_topic: logs.dlq, spool: { dir: $d/spool } }
pipeline: { group: sec-indexer, linger: 100ms, workers: 1 }
sinks: [ $sink ]
EOT
    { echo "listen: { address: 127.0.0.1:$qport }"; tenants_yaml query
      echo "cursor: { key: tenants-test-cursor-key-0123456789 }"
      echo "tail: { poll_interval: 100ms, heartbeat: 1s }"; echo "log: { level: ${SEC_LOG_LEVEL:-info} }"
      echo "tiers: [ $tier ]"; } >"$d/queryd.yaml"
    start_daemon collector "$d/collector.yaml" "$cport" "$d/collector.log"
    local cpid=$DAEMON_PID
    start_daemon indexer "$d/indexer.yaml" "$iport" "$d/indexer.log"
    local ipid=$DAEMON_PID
    start_daemon queryd "$d/queryd.yaml" "$qport" "$d/queryd.log"
    local qpid=$DAEMON_PID
    say "pass $pass: the matrix"
    python3 "$ROOT/tests/security/tenants_check.py" --collector "http://127.0.0.1:$cport" \
        --queryd "http://127.0.0.1:$qport" --spec "$WORK/spec.json" --backend "$pass" \
        --expect-out "$d/expect.json" \
        | tee "$d/matrix.out"
    [ "${PIPESTATUS[0]}" = 0 ] || fail "pass $pass: tenant matrix"
    stop_daemon "$qpid"
    stop_daemon "$cpid"
    stop_daemon "$ipid"
    if [ "$pass" = store ]; then
        say "pass store: each tenant's events under its own name on disk"
        "$BUILD/loghaul" store inspect "$d/store" >"$d/inspect.out" || fail "store inspect"
        python3 - "$d/inspect.out" "$d/expect.json" <<'PY' || { cat "$d/inspect.out"; fail "store layout"; }
import json, sys
want = {t: len(v) for t, v in json.load(open(sys.argv[2])).items()}
got = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    f = line.split()
    if f and f[0] != "total:":
        got[f[0]] = got.get(f[0], 0) + int(f[4])
assert got == want, (got, want)
print("store on disk: events per tenant", got)
PY
    else
        say "pass opensearch: each tenant's index holds its own events only"
        python3 - "$OS_URL" "$OS_PREFIX" <<'PY' || fail "opensearch indices"
import json, sys, urllib.request
url, prefix = sys.argv[1], sys.argv[2]
def get(path, body=None):
    req = urllib.request.Request(url + path, data=body and json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
get("/%s-*/_refresh" % prefix, {})
for t in ("acme", "acme-eu", "globex"):
    r = get("/%s-%s-2*/_search" % (prefix, t),
            {"size": 0, "aggs": {"t": {"terms": {"field": "tenant"}}}})
    keys = {b["key"] for b in r["aggregations"]["t"]["buckets"]}
    assert keys == {t}, (t, keys)
print("opensearch: indices of acme, acme-eu, globex hold one tenant each")
PY
    fi
}

run_pass store
passes="store ($(tail -n 1 "$WORK/store/matrix.out" | grep -o '[0-9]* checks'))"
if curl -fs "$OS_URL" >/dev/null 2>&1; then
    run_pass opensearch
    passes="$passes, opensearch ($(tail -n 1 "$WORK/opensearch/matrix.out" | grep -o '[0-9]* checks'))"
else
    say "OpenSearch not reachable at $OS_URL: only the embedded store pass ran"
fi
say "ok: no cross-tenant read or write: 3 tenants, 33 ingest requests, passes: $passes"
