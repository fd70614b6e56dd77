#!/usr/bin/env bash
# tests/e2e/check_selftest.sh - check.py itself fails when it must: against a
# stand-in search API (a few lines of Python that page through a fixed hit
# list with cursors) and archive directories written with pyarrow (Parquet)
# and zstd (NDJSON), every case of exactly once, a missing id, a duplicate
# (in a later page / another object), an unexpected id and duplicates allowed
# must give the exit status it should. Needs no daemon and no service (~5 s).
. "$(dirname "$0")/../integration/lib.sh"
PY=$(bash "$ROOT/tests/integration/venv.sh") || fail "tests/integration/venv.sh"
CHECK="$ROOT/tests/e2e/check.py"
seq 0 2499 >"$WORK/ids"

# The stand-in queryd: hits from $WORK/hits-<case> (one seq a line), pages of
# pagination.limit, the cursor is the next offset; answers like queryd.
PORT=$(free_port)
cat >"$WORK/fake_queryd.py" <<'PY'
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
work, port = sys.argv[1], int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        if self.headers.get("Authorization") != "Bearer t":
            self.send_response(401); self.end_headers(); return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        case = body["query"]["full_text"]
        seqs = [int(x) for x in open(os.path.join(work, "hits-" + case))]
        lim = body["pagination"]["limit"]
        off = int(body["pagination"].get("cursor") or 0)
        page = seqs[off:off + lim]
        logs = [{"id": f"log_{i}", "message": f"e2e seq={s} file=0"} for i, s in enumerate(page, off)]
        nxt = str(off + lim) if off + lim < len(seqs) else None
        out = json.dumps({"total_hits": len(seqs), "total_hits_relation": "eq",
                          "next_cursor": nxt, "logs": logs}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
python3 "$WORK/fake_queryd.py" "$WORK" "$PORT" &
LH_PIDS+=("$!")
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT" && break; sleep 0.1; done

seq 0 2499 >"$WORK/hits-exact"
{ seq 0 2499; echo 7; } | tac >"$WORK/hits-dup"          # the copy on the last page
seq 0 2499 | grep -vx 1234 >"$WORK/hits-missing"
{ seq 0 2499; echo 99999; } >"$WORK/hits-unexpected"
n=0
expect() {  # WANT-STATUS DESCRIPTION CHECK-ARGS...
    local want="$1" what="$2" rc
    shift 2
    "$PY" "$CHECK" --ids-from "$WORK/ids" "$@" >"$WORK/out" 2>&1
    rc=$?
    [ "$rc" = "$want" ] || { cat "$WORK/out"; fail "$what: exit $rc, want $want"; }
    n=$((n + 1))
}
q=(--queryd "http://127.0.0.1:$PORT" --token t --limit 300)
expect 0 "search exactly once" "${q[@]}" --full-text exact
grep -q "pages 9" "$WORK/out" || { cat "$WORK/out"; fail "the walk did not follow 9 pages"; }
expect 1 "search duplicate" "${q[@]}" --full-text dup
grep -q "1 duplicated" "$WORK/out" || fail "the duplicate is not named"
expect 0 "search duplicate allowed" "${q[@]}" --full-text dup --allow-duplicates search
expect 1 "search missing" "${q[@]}" --full-text missing
grep -q "missing ids (first 10): \[1234\]" "$WORK/out" || { cat "$WORK/out"; fail "missing id not named"; }
expect 1 "search unexpected" "${q[@]}" --full-text unexpected
expect 2 "search with a bad token" --queryd "http://127.0.0.1:$PORT" --token x --full-text exact

# Archives: Parquet objects (pyarrow) and NDJSON+zstd objects, in the layout
# of the dir backend, with a .tmp- file that must be ignored.
mkarchive() {  # DIR RANGES...: objects of seqs lo-hi (p: Parquet, n: NDJSON)
    local dir="$1"
    shift
    "$PY" - "$dir" "$@" <<'PY' || fail "writing the test archive"
import json, os, subprocess, sys
import pyarrow as pa, pyarrow.parquet as pq
d = os.path.join(sys.argv[1], "demo/year=2026/month=01/day=01/hour=00")
os.makedirs(d, exist_ok=True)
open(os.path.join(d, ".tmp-1-00"), "w").write("partial")
for k, spec in enumerate(sys.argv[2:]):
    kind, rng = spec[0], spec[1:]
    lo, hi = map(int, rng.split("-"))
    msgs = [f"e2e seq={s} file=0" for s in range(lo, hi + 1)]
    if kind == "p":
        t = pa.table({"message": msgs, "raw": [None] * len(msgs)})
        pq.write_table(t, os.path.join(d, f"local_h_{k}.parquet"), compression="zstd")
    else:
        data = "".join(json.dumps({"message": m, "raw": m}) + "\n" for m in msgs).encode()
        z = subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True)
        open(os.path.join(d, f"local_h_{k}.ndjson.zst"), "wb").write(z.stdout)
PY
}
mkarchive "$WORK/a-exact" p0-999 n1000-1999 p2000-2499
mkarchive "$WORK/a-dup" p0-999 n1000-1999 p1990-2499
mkarchive "$WORK/a-missing" p0-999 n1001-2499
expect 0 "archive exactly once" --archive-dir "$WORK/a-exact" --prefix demo/
grep -q "objects 3, rows 2500" "$WORK/out" || { cat "$WORK/out"; fail "objects or rows miscounted"; }
expect 1 "archive duplicate across objects" --archive-dir "$WORK/a-dup"
grep -q "10 duplicated (10 extra copies)" "$WORK/out" || { cat "$WORK/out"; fail "duplicates miscounted"; }
expect 0 "archive duplicate allowed" --archive-dir "$WORK/a-dup" --allow-duplicates archive
expect 1 "archive missing" --archive-dir "$WORK/a-missing"
expect 1 "archive missing, waited for" --archive-dir "$WORK/a-missing" --wait 2
grep -q "passes [23]" "$WORK/out" || { cat "$WORK/out"; fail "--wait did not poll again"; }
expect 1 "search and archive: one of them fails" "${q[@]}" --full-text exact \
    --archive-dir "$WORK/a-missing" --json "$WORK/res.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["search"]["ok"] and not r["archive"]["ok"] and not r["ok"] and r["archive"]["missing"] == 1, r' \
    "$WORK/res.json" || fail "--json"
say "ok: check.py gave the right verdict in $n cases (search walk, Parquet and NDJSON archives)"
