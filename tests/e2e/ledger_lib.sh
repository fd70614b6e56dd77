# tests/e2e/ledger_lib.sh - what the delivery-ledger tests share (sourced
# after tests/integration/lib.sh; not a test itself: not executable).
# Expects $WORK/{collector,indexer,queryd,agent}.yaml and the ports
# CPORT IPORT QPORT APORT, and AUDIT=(loghaul audit ...) for the helpers.

# ledger_agent_yaml HOST TOKEN GLOB...: the agent's config, shipping to the
# collector on CPORT with a short batch age.
ledger_agent_yaml() {
    local host="$1" token="$2" globs
    shift 2
    globs=$(IFS=,; echo "$*")
    cat >"$WORK/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail:
  include: [$globs]
  checkpoint: $WORK/agent/checkpoint.json
ship: { endpoints: [http://127.0.0.1:$CPORT], token: $token }
buffer: { dir: $WORK/agent/buffer }
batch: { max_age: 200ms }
host_id: $host
EOT
}

# ledger_embedded_yaml PIPELINE STORE-EXTRA: collector, indexer and queryd
# configs of the embedded pipeline (spool, store + archive dir with a 2 s
# rollover; tenant demo: dev-token to ship, dev-token-1234 to read, and
# tenant other: other-token-1234). PIPELINE and STORE-EXTRA are flow-map
# entries for the indexer's pipeline and store sections.
ledger_embedded_yaml() {
    cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: demo, tokens: [dev-token] } ]
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
    cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
pipeline: { $1 }
sinks:
  - { name: store, type: store, store: { dir: $WORK/store$2 } }
  - name: archive
    type: archive
    archive:
      staging_dir: $WORK/staging
      rollover: 2s
      backend: { type: dir, format: ndjson, dir: { path: $WORK/archive } }
EOT
    cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT }
tenants: [ { name: demo, tokens: [dev-token-1234] }, { name: other, tokens: [other-token-1234] } ]
tiers: [ { type: store, store: { dir: $WORK/store } } ]
EOT
}

# Starts collector, indexer, queryd and agent; sets CPID IPID QPID APID.
ledger_start_all() {
    start_daemon collector "$WORK/collector.yaml" "$CPORT"
    CPID=$DAEMON_PID
    start_daemon indexer "$WORK/indexer.yaml" "$IPORT"
    IPID=$DAEMON_PID
    start_daemon queryd "$WORK/queryd.yaml" "$QPORT"
    QPID=$DAEMON_PID
    start_daemon agent "$WORK/agent.yaml" "$APORT"
    APID=$DAEMON_PID
}

# ledger_total FIELD: totals.FIELD of the JSON report on stdin.
ledger_total() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"][sys.argv[1]])' "$1"
}

# ledger_wait N SECONDS: until N events are read, acknowledged, indexed and
# archived (settle 0: OpenSearch refreshed first).
ledger_wait() {
    local want="$1" end=$((SECONDS + $2)) j k ok
    while :; do
        j="$("${AUDIT[@]}" --settle 0 --json 2>"$WORK/audit.err")"
        ok=1
        for k in read acknowledged indexed archived; do
            [ -n "$j" ] && [ "$(ledger_total $k <<<"$j")" = "$want" ] || ok=0
        done
        [ "$ok" = 1 ] && return 0
        if [ $SECONDS -ge "$end" ]; then
            echo "$j" >&2
            cat "$WORK/audit.err" >&2
            fail "not $want events read, acknowledged, indexed and archived within $2 s"
        fi
        sleep 0.5
    done
}

# ledger_expect_exact HOST FILE=N...: a quiescent audit exits 0, and every
# FILE (and no other) has read = acknowledged = indexed = archived = N and
# nothing unexplained, in either figure.
ledger_expect_exact() {
    local host="$1" rc
    shift
    local t0=$(date +%s%N)
    "${AUDIT[@]}" --settle 0 >"$WORK/audit1.out" 2>&1
    rc=$?
    cat "$WORK/audit1.out"
    say "the audit took $(( ($(date +%s%N) - t0) / 1000000 )) ms ($(cat "$WORK"/*/.ledger/*.ndjson 2>/dev/null | wc -l) ledger rows on disk)"
    [ "$rc" = 0 ] || fail "loghaul audit exited $rc on a quiescent run (want 0)"
    "${AUDIT[@]}" --settle 0 --json >"$WORK/audit1.json" || fail "audit --json"
    python3 - "$WORK/audit1.json" "$host" "$@" <<'PY' || fail "exact counts"
import json, sys
r = json.load(open(sys.argv[1]))
host = sys.argv[2]
want = {a.rsplit("=", 1)[0]: int(a.rsplit("=", 1)[1]) for a in sys.argv[3:]}
got = {}
for w in r["windows"]:
    assert w["host"] == host, w
    g = got.setdefault(w["file"], [0] * 6)
    for i, k in enumerate(["read", "acknowledged", "indexed", "unexplained", "archived"]):
        g[i] += w[k]
    g[5] += w["archive"]["unexplained"]
for f, n in want.items():
    assert got.get(f) == [n, n, n, 0, n, 0], (f, got.get(f), n)
assert set(got) == set(want), got
t = r["totals"]
assert r["ok"] is True and t["unexplained"] == 0 and t["archive_unexplained"] == 0, t
assert t["archived"] == sum(want.values()), t
print("exact per-file counts [read, acked, indexed, unexplained, archived, archive unexplained]:",
      {f.rsplit("/", 2)[-2] + "/" + f.rsplit("/", 1)[1]: v for f, v in got.items()})
PY
}

# ledger_expect_missing HOST FILE N: the audit exits 1 naming FILE with N
# events missing from the hot store.
ledger_expect_missing() {
    local rc
    "${AUDIT[@]}" --settle 0 >"$WORK/audit2.out" 2>&1
    rc=$?
    cat "$WORK/audit2.out"
    [ "$rc" = 1 ] || fail "loghaul audit exited $rc after events were deleted (want 1)"
    grep -q "MISSING: host $1 file $2 window .*: $3 acknowledged" "$WORK/audit2.out" ||
        fail "the audit does not name $2 with $3 missing"
}
