#!/usr/bin/env bash
# search_jobs.sh - search jobs (POST /v1/logs/search/jobs) over an archive of
# 72 hours: a job's result is the same answer as POST /v1/logs/search, its
# progress counts the archive hours, it belongs to its tenant, bad bodies are
# a 400 at once, DELETE cancels a running scan, SIGTERM cancels what runs and
# exits cleanly, and `loghaul search --job` prints what `loghaul search` does.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
"$BUILD/tests/store_fill" "$WORK/archive" --archive --tenant demo --count 400000 --span 72h \
    >/dev/null || fail "store_fill --archive"
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$PORT }
tenants: [ { name: demo, tokens: [dev-token] }, { name: other, tokens: [other-token] } ]
cursor: { key: jobs-test-cursor-key-0123456789 }
jobs: { max_running: 2, timeout: 5m, ttl: 1m }
tiers: [ { type: archive, archive: { type: dir, dir: { path: $WORK/archive } } } ]
EOT
start_daemon queryd "$WORK/queryd.yaml" "$PORT"
QPID=$DAEMON_PID
URL="http://127.0.0.1:$PORT"
START="$(date -u -d '-74 hours' +%FT%TZ)"
BODY="{\"query\":{\"full_text\":\"needle\",\"time_range\":{\"start\":\"$START\"}},\"pagination\":{\"limit\":50}}"

api() {  # api METHOD PATH TOKEN [BODY] -> "<status> <body>"
    local m="$1" p="$2" t="$3" b="${4:-}"
    local -a a=(-s -o "$WORK/resp" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $t")
    [ -n "$b" ] && a+=(-H 'Content-Type: application/json' -d "$b")
    local st
    rm -f "$WORK/resp"
    st="$(curl "${a[@]}" "$URL$p")" || fail "curl $m $p failed ($st)"
    printf '%s %s' "$st" "$(cat "$WORK/resp" 2>/dev/null)"
}
field() { python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))" "$1" "$2"; }

say "a job's result is the search's answer"
r="$(api POST /v1/logs/search/jobs dev-token "$BODY")"
[ "${r%% *}" = 202 ] || fail "create: $r"
id="$(field "${r#* }" 'j["job_id"]')"
for _ in $(seq 1 600); do
    r="$(api GET "/v1/logs/search/jobs/$id" dev-token)"
    [ "$(field "${r#* }" 'j["status"]')" = running ] || break
    sleep 0.1
done
job="${r#* }"
[ "$(field "$job" 'j["status"]')" = done ] || fail "job did not finish: $job"
direct="$(api POST /v1/logs/search dev-token "$BODY")"
[ "${direct%% *}" = 200 ] || fail "search: $direct"
python3 - "$job" "${direct#* }" <<'PY' || fail "job result differs from the search answer"
import json, sys
job, direct = json.loads(sys.argv[1]), json.loads(sys.argv[2])
res = job["result"]
for k in ("took_ms",):
    res.pop(k, None); direct.pop(k, None)
assert res == direct, (res, direct)
assert res["total_hits"] == 3 and [l["id"] for l in res["logs"]] == ["fixed-1", "fixed-2", "fixed-3"], res
p = job["progress"]
assert p["units_total"] >= 72 and p["units_done"] == p["units_total"], p
assert p["events_scanned"] == 400003, p
PY

say "tenants, tokens and bad bodies"
r="$(api GET "/v1/logs/search/jobs/$id" other-token)"
[ "${r%% *}" = 404 ] || fail "another tenant's job: $r"
r="$(api GET "/v1/logs/search/jobs/$id" wrong-token)"
[ "${r%% *}" = 401 ] || fail "unknown token: $r"
r="$(api GET /v1/logs/search/jobs/0123456789abcdef0123456789abcdef dev-token)"
[ "${r%% *}" = 404 ] || fail "unknown job: $r"
r="$(api POST /v1/logs/search/jobs dev-token '{"query":{"filters":[{"field":"nope","operator":"EQUALS","value":1}]}}')"
[ "${r%% *}" = 400 ] && [ "$(field "${r#* }" 'j["error"]["field"]')" = "query.filters[0].field" ] \
    || fail "bad body: $r"
r="$(api DELETE "/v1/logs/search/jobs/$id" dev-token)"
[ "${r%% *}" = 200 ] && [ "$(field "${r#* }" 'j["deleted"]')" = True ] || fail "delete done: $r"
r="$(api GET "/v1/logs/search/jobs/$id" dev-token)"
[ "${r%% *}" = 404 ] || fail "deleted job still there: $r"

say "DELETE cancels a running scan"
SLOW="{\"query\":{\"full_text\":\"no-such-word-anywhere\",\"time_range\":{\"start\":\"$START\"}}}"
r="$(api POST /v1/logs/search/jobs dev-token "$SLOW")"
id="$(field "${r#* }" 'j["job_id"]')"
r="$(api DELETE "/v1/logs/search/jobs/$id" dev-token)"
[ "$(field "${r#* }" 'j["status"]')" = cancelling ] || fail "cancel: $r"
for _ in $(seq 1 100); do
    r="$(api GET "/v1/logs/search/jobs/$id" dev-token)"
    [ "$(field "${r#* }" 'j["status"]')" = running ] || break
    sleep 0.1
done
python3 - "${r#* }" <<'PY' || fail "cancelled job: ${r#* }"
import json, sys
j = json.loads(sys.argv[1])
assert j["status"] == "cancelled" and j["http_status"] == 503, j
assert j["error"]["code"] == "cancelled", j
assert j["progress"]["units_done"] < j["progress"]["units_total"], j
PY

say "loghaul search --job prints what loghaul search prints"
export LOGHAUL_SERVER="$URL" LOGHAUL_TOKEN=dev-token
"$BUILD/loghaul" search --since 74h -n 200 -o json -f level=ERROR >"$WORK/plain" || fail "search"
"$BUILD/loghaul" search --since 74h -n 200 -o json -f level=ERROR --job >"$WORK/job" 2>"$WORK/job.err" \
    || { cat "$WORK/job.err"; fail "search --job"; }
[ "$(wc -l <"$WORK/plain")" = 200 ] && cmp -s "$WORK/plain" "$WORK/job" || fail "--job output differs"

say "SIGTERM cancels running jobs and exits cleanly"
api POST /v1/logs/search/jobs dev-token "$SLOW" >/dev/null
t0=$SECONDS
stop_daemon "$QPID" || fail "queryd did not exit cleanly with a job running"
[ $((SECONDS - t0)) -lt 10 ] || fail "shutdown took $((SECONDS - t0)) s"
say "ok: search jobs (result = search, progress over 72+ archive hours, tenancy, cancel, CLI, SIGTERM)"
