#!/usr/bin/env bash
# The collector's bad-input table: each case gets its expected status, and a
# health probe after each one shows the daemon keeps serving. Then TLS: only
# TLS 1.3 is accepted, and with mTLS required a client without a certificate
# (or with one from another CA) is refused, while a good one is mapped to
# its tenant by the certificate's CN.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$PORT, max_body: 16MiB, header_timeout: 2s }
tenants:
  - { name: demo, tokens: [dev-token] }
  - { name: other, tokens: [other-token] }
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
start_daemon collector "$WORK/collector.yaml" "$PORT"
PID=$DAEMON_PID
URL="http://127.0.0.1:$PORT/v1/logs/ingest"
AUTH=(-H 'Authorization: Bearer dev-token' -H 'Content-Type: application/json')
healthy() { expect_status 200 "http://127.0.0.1:$PORT/healthz"; }
case_() {  # name status curl-args...
    local name="$1" want="$2"
    shift 2
    expect_status "$want" -X POST "$URL" "$@"
    healthy
    printf '  %-34s %s\n' "$name" "$want"
}
GOOD='{"log_records":[{"raw_message":"ok"}]}'

say "bad input table"
case_ "good batch" 200 "${AUTH[@]}" -d "$GOOD"
case_ "malformed JSON" 400 "${AUTH[@]}" -d '{"log_records":[{"raw_message":"a"'
case_ "wrong types" 400 "${AUTH[@]}" -d '{"log_records":[{"raw_message":17}]}'
case_ "missing log_records" 400 "${AUTH[@]}" -d '{"shipper_metadata":{}}'
case_ "empty batch" 400 "${AUTH[@]}" -d '{"log_records":[]}'
python3 -c 'print("{\"log_records\":[{\"raw_message\":\"a\",\"x\":" + "["*10000 + "]"*10000 + "}]}")' >"$WORK/deep.json"
case_ "10k-deep nesting" 400 "${AUTH[@]}" --data-binary @"$WORK/deep.json"
head -c 1000000000 /dev/zero | gzip -1 >"$WORK/bomb.gz"
case_ "gzip bomb (1 MB -> 1 GB)" 413 "${AUTH[@]}" -H 'Content-Encoding: gzip' --data-binary @"$WORK/bomb.gz"
echo "$GOOD" | gzip | head -c 20 >"$WORK/trunc.gz"
case_ "truncated gzip" 400 "${AUTH[@]}" -H 'Content-Encoding: gzip' --data-binary @"$WORK/trunc.gz"
case_ "wrong Content-Encoding" 415 "${AUTH[@]}" -H 'Content-Encoding: br' -d "$GOOD"
case_ "gzip body sent as identity" 400 "${AUTH[@]}" --data-binary @"$WORK/trunc.gz"
head -c 100000000 /dev/zero | tr '\0' 'a' >"$WORK/big.txt"
case_ "100 MB body" 413 "${AUTH[@]}" --data-binary @"$WORK/big.txt"
printf '{"log_records":[{"raw_message":"bad \xff\xfe utf8"}]}' >"$WORK/utf8.json"
case_ "invalid UTF-8 (repaired)" 200 "${AUTH[@]}" --data-binary @"$WORK/utf8.json"
printf '{"log_records":[{"raw_message":"nul \x00 byte"}]}' >"$WORK/nul.json"
case_ "raw NUL byte" 400 "${AUTH[@]}" --data-binary @"$WORK/nul.json"
case_ "huge header" 431 "${AUTH[@]}" -H "X-Pad: $(head -c 100000 /dev/zero | tr '\0' 'x')" -d "$GOOD"
case_ "unknown token" 401 -H 'Authorization: Bearer nope' -d "$GOOD"
case_ "no credentials" 401 -d "$GOOD"
case_ "token of another tenant" 403 "${AUTH[@]}" -H 'X-Log-Tenant: other' -d "$GOOD"
case_ "bad Idempotency-Key" 400 "${AUTH[@]}" -H 'Idempotency-Key: not-a-uuid' -d "$GOOD"
case_ "too many metadata keys" 413 "${AUTH[@]}" -d "{\"log_records\":[{\"raw_message\":\"a\",\"metadata\":{$(seq -s, -f '"k%g":"v"' 1 300)}}]}"
expect_status 404 "http://127.0.0.1:$PORT/v1/nope"
expect_status 405 -X GET "$URL"

say "Idempotency-Key: a retry is acknowledged once; a reused key with other records is refused"
KEY=0190a4e2-3b7c-7def-8a12-0123456789ab
produced() {
    curl -s "http://127.0.0.1:$PORT/metrics" |
        awk '/^loghaul_bus_produced_messages_total/ { s += $NF } END { print s + 0 }'
}
B1='{"log_records":[{"raw_message":"first a"},{"raw_message":"first b"}]}'
B2='{"log_records":[{"raw_message":"other records"}]}'
KEYED=("${AUTH[@]}" -H "Idempotency-Key: $KEY")
expect_status 200 -X POST "$URL" "${KEYED[@]}" -d "$B1"
n0=$(produced)
expect_status 200 -X POST "$URL" "${KEYED[@]}" -d "$B1"
grep -q '"accepted":2,.*"duplicate":true' "$WORK/last_body" || fail "retry not answered as a duplicate: $(cat "$WORK/last_body")"
printf '%s' "$B1" | gzip >"$WORK/b1.gz"
expect_status 200 -X POST "$URL" "${KEYED[@]}" -H 'Content-Encoding: gzip' --data-binary @"$WORK/b1.gz"
grep -q '"accepted":2,.*"duplicate":true' "$WORK/last_body" || fail "gzip retry not answered as a duplicate: $(cat "$WORK/last_body")"
expect_status 422 -X POST "$URL" "${KEYED[@]}" -d "$B2"
grep -q idempotency_key_reused "$WORK/last_body" || fail "no reason in the 422: $(cat "$WORK/last_body")"
[ "$(produced)" = "$n0" ] || fail "retries or the refused batch reached the bus ($n0 -> $(produced) messages)"
healthy
echo "  same records again (identity, then gzip): 200 duplicate; other records under the key: 422; bus unchanged"

say "slow client holding a connection (header timeout 2 s) while others are served"
python3 - "$PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/logs/ingest HTTP/1.1\r\nHost: x\r\n")
t0 = time.time()
try:
    for _ in range(100):
        s.sendall(b"X-Slow: y\r\n")
        time.sleep(0.2)
        if s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
            break
except (BlockingIOError,):
    pass
except OSError:
    pass
sys.exit(0 if time.time() - t0 < 10 else 1)
PY
SLOW=$!
for _ in 1 2 3 4 5; do healthy; expect_status 200 -X POST "$URL" "${AUTH[@]}" -d "$GOOD"; sleep 0.3; done
wait "$SLOW" || fail "the slow client was not cut off"
echo "  slow client cut off; others served meanwhile"
stop_daemon "$PID"

say "TLS 1.3 only, mTLS required"
P="$WORK/pki"
mkdir -p "$P"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=loghaul-test-ca -keyout "$P/ca.key" -out "$P/ca.crt" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=rogue-ca -keyout "$P/rogue.key" -out "$P/rogue.crt" 2>/dev/null
leaf() {  # name cn ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
        -keyout "$P/$1.key" -out "$P/$1.csr" 2>/dev/null
    openssl x509 -req -in "$P/$1.csr" -CA "$P/$3.crt" -CAkey "$P/$3.key" -CAcreateserial \
        -days 2 -out "$P/$1.crt" -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1') 2>/dev/null
}
leaf server localhost ca
leaf agent agent-1.demo ca
leaf rogue agent-1.demo rogue
TPORT=$(free_port)
cat >"$WORK/tls.yaml" <<EOT
listen:
  address: 127.0.0.1:$TPORT
  tls: { cert: $P/server.crt, key: $P/server.key, client_ca: $P/ca.crt, client_auth: require }
tenants: [ { name: demo, tokens: [dev-token], client_cns: [agent-1.demo] } ]
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool-tls } }
EOT
"$BUILD/loghaul-collector" -c "$WORK/tls.yaml" >>"$WORK/tls.log" 2>&1 &
LH_PIDS+=($!)
TURL="https://localhost:$TPORT/v1/logs/ingest"
C=(--cacert "$P/ca.crt" --resolve "localhost:$TPORT:127.0.0.1")
for _ in $(seq 1 50); do
    curl -s "${C[@]}" --cert "$P/agent.crt" --key "$P/agent.key" "https://localhost:$TPORT/healthz" >/dev/null && break
    sleep 0.1
done
expect_status 200 "${C[@]}" --cert "$P/agent.crt" --key "$P/agent.key" -X POST "$TURL" -d "$GOOD"
echo "  TLS 1.3 + client cert (tenant by CN, no token): 200"
code=$(curl -s -o /dev/null -w '%{http_code}' "${C[@]}" --cert "$P/agent.crt" --key "$P/agent.key" \
    --tls-max 1.2 -X POST "$TURL" -d "$GOOD")
[ "$code" = 000 ] || fail "TLS 1.2 client got HTTP $code"
echo "  TLS 1.2 client: refused"
code=$(curl -s -o /dev/null -w '%{http_code}' "${C[@]}" -H 'Authorization: Bearer dev-token' -X POST "$TURL" -d "$GOOD")
[ "$code" = 000 ] || fail "client without a certificate got HTTP $code"
echo "  no client certificate: refused"
code=$(curl -s -o /dev/null -w '%{http_code}' "${C[@]}" --cert "$P/rogue.crt" --key "$P/rogue.key" -X POST "$TURL" -d "$GOOD")
[ "$code" = 000 ] || fail "client with a certificate from another CA got HTTP $code"
echo "  certificate from an unknown CA: refused"
"$BUILD/tests/bus_verify" --bus spool --dir "$WORK/spool-tls" --expect 0 --timeout 3 >/dev/null 2>&1
say "ok"
