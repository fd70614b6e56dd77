# tests/security/seclib.sh - helpers shared by the security test scripts
# (sourced after tests/integration/lib.sh; not a test itself): posting
# ingest batches, running queries, and JSON checks with python3.

# ingest URL TOKEN-HEADER-LINE BODY [CURL-ARGS...]: one ingest request; prints
# the HTTP status, the body lands in $WORK/last_body. An empty header line
# sends no credentials.
ingest() {
    local url="$1" auth="$2" body="$3"
    shift 3
    local -a h=(-H 'Content-Type: application/json')
    [ -n "$auth" ] && h+=(-H "$auth")
    curl -s -o "$WORK/last_body" -w '%{http_code}' -X POST "${h[@]}" "$@" \
        --data-binary "$body" "$url/v1/logs/ingest"
}

# query URL TOKEN PATH BODY OUT [CURL-ARGS...]: a POST to queryd; prints the
# HTTP status, the answer goes to OUT.
query() {
    local url="$1" token="$2" path="$3" body="$4" out="$5"
    shift 5
    local -a h=()
    [ -n "$token" ] && h=(-H "Authorization: Bearer $token")
    curl -s -o "$out" -w '%{http_code}' -X POST "${h[@]}" "$@" --data-binary "$body" \
        "$url$path"
}

# json FILE EXPR: prints the python expression EXPR over j (the parsed file).
json() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# metric URL NAME: the value of a metric line (name with labels, exactly) on
# URL/metrics, or 0.
metric_of() {
    curl -s "$1/metrics" | awk -v n="$2" '$1 == n {v = $2} END {print v + 0}'
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it
# succeeds; fails the test after SECONDS.
wait_for() {
    local secs="$1" what="$2"
    shift 2
    local end=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -ge "$end" ] && fail "timed out after ${secs}s waiting for: $what"
        sleep 0.2
    done
}
