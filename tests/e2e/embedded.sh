#!/usr/bin/env bash
# tests/e2e/embedded.sh - the embedded deployment end to end, every daemon
# real: logwriter.py writes app-format lines (each with a unique seq=<n> and
# its write time) into 4 files at a steady rate, rotating them (rename and
# create, copytruncate, delete after drain, same name reappearing) ->
# loghaul-agent -> loghaul-collector -> spool bus -> loghaul-indexer (parse,
# enrich, mask) -> embedded store + archive directory (Parquet) ->
# loghaul-queryd. Then, once the pipeline is quiet (polled, not slept):
#   check.py walks queryd's search cursor over ALL results: every seq exactly
#            once; and reads every archive object: every seq exactly once,
#            before and after the daemons' clean shutdown;
#   latency.py: files-to-search latency of every 50th line (p50/p99 per
#            phase, reported, never asserted; target p99 < 2 s).
# Default: 100,000 lines at 1,250 lines/s (~80 s; ~2 min in all).
# LOGHAUL_LONG=1: 10 minutes at 2,000 lines/s, then a 3x burst for 60 s.
# $LOGHAUL_E2E_RESULTS: the counts and latencies go there as JSON.
# Needs no external service.
# long-variant: yes
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"

if [ "$LONG" = 1 ]; then
    RATE=${LOGHAUL_E2E_RATE:-2000}
    PHASES="$RATE:$((RATE * 600)):steady,$((RATE * 3)):$((RATE * 180)):burst"
else
    RATE=${LOGHAUL_E2E_RATE:-1250}
    PHASES="$RATE:${LOGHAUL_E2E_LINES:-100000}:steady"
fi
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port)
TENANT=demo
mkdir -p "$WORK/input" "$WORK/agent"

cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: $TENANT, tokens: [e2e-token] } ]
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus: { type: spool, topic: logs, dlq_topic: logs.dlq, spool: { dir: $WORK/spool } }
pipeline: { group: loghaul-indexer, max_batch: 5000, linger: 200ms, workers: 2 }
stages: [parse, enrich, mask]
parse: { patterns_dir: $ROOT/config/patterns }
enrich: { tags: { region: local, env: e2e } }
mask: { emails: true, cards: true }
sinks:
  - { name: store, type: store, store: { dir: $WORK/store, retention: 7d } }
  - name: archive
    type: archive
    archive:
      staging_dir: $WORK/archive-staging
      rollover: 10s
      host: e2e-host
      backend: { type: dir, format: parquet, dir: { path: $WORK/archive } }
EOT
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT }
tenants: [ { name: $TENANT, tokens: [e2e-token] } ]
cursor: { key: e2e-cursor-key-$RANDOM$RANDOM$RANDOM$RANDOM }
limits: { total_hits_cap: 100000000 }
tiers:
  - { type: store, max_age: 7d, store: { dir: $WORK/store } }
  - { type: archive, archive: { type: dir, dir: { path: $WORK/archive } } }
EOT
cat >"$WORK/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail:
  include: [$WORK/input/*.log]
  checkpoint: $WORK/agent/checkpoint.json
  rotate_wait: 2s
ship: { endpoints: ["http://127.0.0.1:$CPORT"], token: e2e-token }
buffer: { dir: $WORK/agent/buffer }
batch: { max_bytes: 1MiB, max_age: 1s, compression: gzip }
host_id: e2e-host
EOT

start_daemon collector "$WORK/collector.yaml" "$CPORT"
CPID=$DAEMON_PID
start_daemon indexer "$WORK/indexer.yaml" "$IPORT"
IPID=$DAEMON_PID
start_daemon queryd "$WORK/queryd.yaml" "$QPORT"
QPID=$DAEMON_PID
start_daemon agent "$WORK/agent.yaml" "$APORT"
APID=$DAEMON_PID

E2E_DAEMONS=("$CPID" "$IPID" "$QPID" "$APID")
e2e_run "http://127.0.0.1:$QPORT" e2e-token
say "checking search (cursor walk over every hit) and the archive directory (live)"
e2e_check search --queryd "http://127.0.0.1:$QPORT" --token e2e-token --wait 120
e2e_check archive-live --archive-dir "$WORK/archive" --prefix "$TENANT/" --wait 60
e2e_metrics "agent:$APORT" "collector:$CPORT" "indexer:$IPORT"
say "stopping the daemons (SIGTERM: drain, archive staging uploaded)"
for p in "$APID" "$CPID" "$IPID" "$QPID"; do stop_daemon "$p"; done
e2e_check archive --archive-dir "$WORK/archive" --prefix "$TENANT/"
e2e_finish embedded
