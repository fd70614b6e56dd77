#!/usr/bin/env bash
# queryd_restart.sh - a cursor walk survives loghaul-queryd being killed
# with SIGKILL between pages and restarted, while new events arrive in the
# store: the walk goes on from its cursor on the new process and returns
# every hit of the first page's window exactly once, in order (cursors are
# signed and carry their position: no server-side state to lose).
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
"$BUILD/tests/store_fill" "$WORK/store" --tenant demo --count 20000 --span 1h \
    --end "$(( ($(date +%s) - 600) * 1000000000 ))" >/dev/null || fail "store_fill"
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$PORT }
tenants: [ { name: demo, tokens: [dev-token] } ]
cursor: { key: restart-test-cursor-key-0123456789 }
tiers: [ { type: store, store: { dir: $WORK/store } } ]
EOT
start_daemon queryd "$WORK/queryd.yaml" "$PORT"
QPID=$DAEMON_PID

# page URL TOKEN LIMIT CURSOR -> the response body on stdout
page() {
    local cur=""
    [ -n "$4" ] && cur=",\"cursor\":\"$4\""
    curl -fsS -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
        -d "{\"query\":$QUERY,\"pagination\":{\"limit\":$3$cur}}" "$1/v1/logs/search"
}
# The same query on every page (a cursor is bound to it).
QUERY="{\"time_range\":{\"start\":\"$(date -u -d '-3 hours' +%FT%TZ)\"}}"

: >"$WORK/ids"
cursor="" pages=0 kills=0
while :; do
    out="$(page "http://127.0.0.1:$PORT" dev-token 700 "$cursor")" \
        || fail "page $pages failed (cursor ${cursor:0:20}...)"
    python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); print("\n".join(l["id"]+" "+l["timestamp"] for l in j["logs"]))' \
        <<<"$out" | sed '/^$/d' >>"$WORK/ids"
    cursor="$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("next_cursor") or "")' <<<"$out")"
    pages=$((pages + 1))
    [ -z "$cursor" ] && break
    if [ $((pages % 7)) = 3 ]; then
        # kill -9 between pages, more events land meanwhile, a new process continues
        kill -KILL "$QPID"
        wait "$QPID" 2>/dev/null
        kills=$((kills + 1))
        "$BUILD/tests/store_fill" "$WORK/store" --tenant demo --count 2000 --span 5m \
            --seed $((kills + 7)) >/dev/null || fail "store_fill while walking"
        start_daemon queryd "$WORK/queryd.yaml" "$PORT"
        QPID=$DAEMON_PID
    fi
done
[ "$kills" -ge 3 ] || fail "only $kills kills during the walk"

python3 - "$WORK/ids" <<'PY' || fail "walk"
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
ids = [r[0] for r in rows]
assert len(ids) == len(set(ids)), "duplicates: %d" % (len(ids) - len(set(ids)))
assert len(ids) == 20003, "walk returned %d hits, want the 20003 of the first page's window" % len(ids)
ts = [r[1] for r in rows]
assert ts == sorted(ts, reverse=True), "hits not newest first across restarts"
PY
say "ok: 20003 hits exactly once over $pages pages, queryd killed -9 $kills times mid-walk"
