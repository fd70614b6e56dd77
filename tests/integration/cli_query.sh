#!/usr/bin/env bash
# cli_query.sh - `loghaul search|aggregate|tail` against a real loghaul-queryd
# on a store filled by build/tests/store_fill, and `loghaul store
# inspect|verify` (including a corrupted segment: exit status 1).
. "$(dirname "$0")/lib.sh"

LH="$BUILD/loghaul"
PORT=$(free_port)
"$BUILD/tests/store_fill" "$WORK/store" --tenant demo --count 20000 --span 1h >/dev/null \
    || fail "store_fill"
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$PORT }
tenants: [ { name: demo, tokens: [dev-token] } ]
cursor: { key: cli-test-cursor-key-0123456789 }
tiers: [ { type: store, store: { dir: $WORK/store } } ]
tail: { poll_interval: 100ms, heartbeat: 1s }
EOT
start_daemon queryd "$WORK/queryd.yaml" "$PORT"
export LOGHAUL_SERVER="http://127.0.0.1:$PORT" LOGHAUL_TOKEN=dev-token

say "search: text lines, newest first, summary on stderr"
"$LH" search needle >"$WORK/s1.out" 2>"$WORK/s1.err" || fail "search needle"
[ "$(wc -l <"$WORK/s1.out")" = 3 ] || { cat "$WORK/s1.out"; fail "3 needle hits expected"; }
head -1 "$WORK/s1.out" | grep -q 'ERROR checkout web-7: needle in the checkout: card declined trace_id=tr_needle_1 order_id=o-777' \
    || { cat "$WORK/s1.out"; fail "first line"; }
grep -q '^3 hits shown of 3 (store)' "$WORK/s1.err" || { cat "$WORK/s1.err"; fail "summary"; }
grep -q $'\033' "$WORK/s1.out" && fail "colours when not on a terminal"
"$LH" search needle --color always | grep -q $'\033\[1;31mERROR' || fail "--color always"
NO_COLOR=1 "$LH" search needle --color auto | grep -q $'\033' && fail "NO_COLOR"

say "search: -o json, filters, paging with --all and -n"
"$LH" search -o json -f service=checkout -f 'level>=WARN' >"$WORK/s2.out" || fail "json"
[ "$(wc -l <"$WORK/s2.out")" = 2 ] || fail "2 hits for service=checkout level>=WARN"
python3 - "$WORK/s2.out" <<'PY' || fail "json lines"
import json, sys
hits = [json.loads(l) for l in open(sys.argv[1])]
assert [h["id"] for h in hits] == ["fixed-1", "fixed-2"], hits
assert hits[0]["metadata"]["order_id"] == "o-777" and hits[0]["metadata"]["host"] == "web-7"
PY
n=$("$LH" search --all -o json 2>/dev/null | wc -l)
[ "$n" = 20003 ] || fail "--all walked $n hits, want 20003"
n=$("$LH" search -n 2500 -o json -f 'metadata.duration_ms>=500' 2>/dev/null | wc -l)
[ "$n" = 2500 ] || fail "-n 2500 gave $n"
"$LH" search -f 'service=[checkout,nope]' -f 'trace_id?' -o json | grep -q '"id":"fixed-1"' \
    || fail "IN and EXISTS expressions"
"$LH" search -f '!trace_id?' -f 'service^=check' -o json | grep -c '"id"' | grep -qx 2 \
    || fail "not EXISTS and PREFIX"
"$LH" search --since 1h -f 'message~=card decl' -o json | grep -q fixed-1 || fail "CONTAINS"

say "search: bad input is a clear error (exit 2)"
"$LH" search -f 'nofield=1' >/dev/null 2>"$WORK/e1"; rc=$?
[ "$rc" = 2 ] && grep -q 'query.filters\[0\].field: unknown field "nofield"' "$WORK/e1" \
    || { cat "$WORK/e1"; fail "unknown field: rc $rc"; }
"$LH" search -t wrong-token-123 x >/dev/null 2>"$WORK/e2"; rc=$?
"$LH" search -f 'service' >/dev/null 2>"$WORK/e3"; rc3=$?
[ "$rc" = 2 ] && grep -q 'unknown token' "$WORK/e2" || fail "bad token: rc $rc"
[ "$rc3" = 2 ] && grep -q 'bad filter' "$WORK/e3" || fail "bad expression: rc $rc3"

say "aggregate: buckets and top values"
"$LH" aggregate --since 2h -i 10m --top level --top service:3 >"$WORK/a.out" || fail "aggregate"
grep -q '^top level:' "$WORK/a.out" && grep -q '^top service:' "$WORK/a.out" || fail "tops"
total=$(awk '/matching events/ {print $1}' "$WORK/a.out")
[ "$total" = 20003 ] || { cat "$WORK/a.out"; fail "aggregate total $total"; }
"$LH" aggregate -o json --since 2h -f service=checkout | python3 -c \
    'import json,sys; j=json.load(sys.stdin); assert j["total_hits"]==3, j' || fail "json"

say "tail: new events arrive"
"$LH" tail -o json >"$WORK/t.out" 2>"$WORK/t.err" &
TAIL=$!
LH_PIDS+=("$TAIL")
sleep 1
"$BUILD/tests/store_fill" "$WORK/store" --tenant demo --count 20 --span 1s --seed 77 >/dev/null
for _ in $(seq 1 30); do [ "$(grep -c '"id"' "$WORK/t.out")" -ge 20 ] && break; sleep 0.1; done
kill -INT "$TAIL"; wait "$TAIL" 2>/dev/null
got=$(grep -c '"id"' "$WORK/t.out")
[ "$got" = 20 ] || { cat "$WORK/t.out" "$WORK/t.err"; fail "tail: $got events, want 20"; }
grep -q '"id":"fixed-' "$WORK/t.out" && fail "tail sent old events"

say "store inspect and verify"
"$LH" store inspect "$WORK/store" | grep -q '^demo ' || fail "inspect"
"$LH" store verify "$WORK/store" | tail -1 | grep -q '^verify: OK' || fail "verify clean"
seg=$(find "$WORK/store" -name '*.seg' | head -1)
python3 - "$seg" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    size = os.path.getsize(p)
    f.seek(size // 2)
    b = f.read(1)
    f.seek(size // 2)
    f.write(bytes([b[0] ^ 0x5a]))
PY
"$LH" store verify "$WORK/store" >"$WORK/v.out"; rc=$?
[ "$rc" = 1 ] || { cat "$WORK/v.out"; fail "verify of a corrupted segment: exit $rc"; }
grep -qi 'corrupt\|mismatch' "$WORK/v.out" || fail "verify names the problem"
say "ok"
