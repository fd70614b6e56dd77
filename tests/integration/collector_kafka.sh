#!/usr/bin/env bash
# The collector into real Kafka: records from 8 concurrent clients are read
# back exactly once with key = host and the tenant header; then the broker
# restarts in the middle of a run: clients see 503s and retry, and every
# record that got a 200 is in Kafka afterwards (retried ones with their ids).
# services: kafka
. "$(dirname "$0")/lib.sh"

N=200000
[ "$LONG" = 1 ] && N=1000000
PORT=$(free_port)
TOPIC="itest-collector-$$-$RANDOM"
cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$PORT }
tenants: [ { name: demo, tokens: [dev-token] } ]
bus:
  type: kafka
  topic: $TOPIC
  kafka: { brokers: 127.0.0.1:9092, delivery_timeout: 20s }
EOT
URL="http://127.0.0.1:$PORT/v1/logs/ingest"

say "exactly once into Kafka: $N records, 8 clients, topic $TOPIC"
start_daemon collector "$WORK/collector.yaml" "$PORT"
"$BUILD/tests/ingest_load" --url "$URL" --clients 8 --records "$N" || fail "load"
"$BUILD/tests/bus_verify" --bus kafka --topic "$TOPIC" --expect "$N" --timeout 120 \
    || fail "verify"

say "broker restart in the middle of a run"
# The broker stops while the first batches are in flight and stays down for
# a while, so clients certainly see 503s and must retry.
"$BUILD/tests/ingest_load" --url "$URL" --clients 8 --records "$N" --start "$N" \
    --max-seconds 300 >"$WORK/load2.out" 2>&1 &
LOAD=$!
sleep 0.3
"$ROOT/tests/services/kafka" stop
sleep 8
"$ROOT/tests/services/kafka" start || fail "kafka did not come back"
wait "$LOAD" || { cat "$WORK/load2.out"; fail "load across the restart"; }
cat "$WORK/load2.out"
# The outage must show: as 503s, or as batches held until the broker came back.
p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$WORK/load2.out")
if grep -q ' 503=0 ' "$WORK/load2.out" && [ "${p99%.*}" -lt 2000 ]; then
    fail "the run did not see the broker outage (no 503, p99 ${p99} ms)"
fi
"$BUILD/tests/bus_verify" --bus kafka --topic "$TOPIC" --start "$N" --expect "$N" \
    --at-least-once --timeout 180 --group after-restart || fail "verify after restart"
say "ok"
