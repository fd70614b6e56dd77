#!/usr/bin/env python3
"""check.py - the chaos tests' exact-count check through loghaul-queryd.

usage: check.py --url http://127.0.0.1:PORT --token T --run RUN --expect N
                [--since EPOCH_S] [--fault-end EPOCH_S] [--timeout 300]
                [--lost-count K] [--json OUT]

Polls POST /v1/logs/aggregate (full text RUN) until it counts at least N
events (or the timeout passes), then walks POST /v1/logs/search page by page
with next_cursor over every hit and checks: each seq 0..N-1 that gen.py wrote
is found exactly once, no seq appears twice (a visible duplicate: the same
line under two ids), no id appears twice in one walk (a cursor repeat), no
seq outside 0..N-1. A walk that finds less is repeated until the timeout.
--lost-count K: the agent counted K lines lost (a documented loss window):
then exactly K may be missing (found + K = N), not one more or less.

Prints one summary line and exits 0 when every line is found exactly once,
1 otherwise. --json OUT gets {"sent", "found", "missing", "duplicates",
"cursor_repeats", "recovery_s", "walks"}; recovery_s is the time from
--fault-end until the walk that found everything."""
import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request

SEQ = re.compile(r"\bseq=(\d+)\b")


def post(url, token, path, body, timeout=60):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300]
    except (urllib.error.URLError, OSError, ValueError) as e:
        return 0, str(e)


def query(a):
    return {"full_text": a.run,
            "time_range": {"start": int((a.since - 3600) * 1000),
                           "end": int((time.time() + 3600) * 1000)}}


def count(a):
    st, body = post(a.url, a.token, "/v1/logs/aggregate", {"query": query(a)})
    if st != 200:
        return None, f"aggregate: HTTP {st}: {body}"
    return body.get("total_hits", 0), None


def walk(a):
    """One walk over every hit: (counts per seq, cursor repeats, strays, error)."""
    q = query(a)
    seen_ids = set()
    per_seq = {}
    repeats = strays = 0
    cursor = None
    while True:
        body = {"query": q, "pagination": {"limit": 1000}}
        if cursor:
            body["pagination"]["cursor"] = cursor
        st, page = post(a.url, a.token, "/v1/logs/search", body)
        if st != 200:
            return None, 0, 0, f"search: HTTP {st}: {page}"
        for h in page.get("logs", []):
            hid = h.get("id")
            if hid in seen_ids:
                repeats += 1
                continue
            seen_ids.add(hid)
            m = SEQ.search(h.get("message") or "")
            if not m or a.run not in (h.get("message") or ""):
                strays += 1
                continue
            s = int(m.group(1))
            per_seq[s] = per_seq.get(s, 0) + 1
        cursor = page.get("next_cursor")
        if not cursor or not page.get("logs"):
            return per_seq, repeats, strays, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default="dev-token")
    ap.add_argument("--run", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--since", type=float, default=time.time() - 86400)
    ap.add_argument("--fault-end", type=float, default=None)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--lost-count", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()

    need = a.expect - a.lost_count
    deadline = time.time() + a.timeout
    walks = 0
    last_err = None
    per_seq, repeats, strays = {}, 0, 0
    while True:
        n, err = count(a)
        if err:
            last_err = err
        elif n >= need or time.time() >= deadline:
            per_seq, repeats, strays, err = walk(a)
            walks += 1
            if err:
                last_err = err
                per_seq = {}
            else:
                found = sum(1 for s in range(a.expect) if s in per_seq)
                if found >= need or time.time() >= deadline:
                    break
        if time.time() >= deadline:
            break
        time.sleep(1)
    t_done = time.time()
    found = sum(1 for s in range(a.expect) if s in per_seq)
    missing = [s for s in range(a.expect) if s not in per_seq]
    dups = sum(c - 1 for c in per_seq.values() if c > 1)
    outside = sum(1 for s in per_seq if s >= a.expect or s < 0)
    rec = round(t_done - a.fault_end, 1) if a.fault_end else None
    ok = (len(missing) == a.lost_count and dups == 0 and repeats == 0 and strays == 0
          and outside == 0)
    res = {"sent": a.expect, "found": found, "missing": len(missing), "duplicates": dups,
           "cursor_repeats": repeats, "recovery_s": rec, "walks": walks,
           "reported_lost": a.lost_count}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f)
    if last_err and not ok:
        print(f"check: last error: {last_err}", file=sys.stderr)
    if len(missing) != a.lost_count:
        print(f"check: {len(missing)} lines missing ({a.lost_count} counted lost by the agent),"
              f" first: {missing[:10]}", file=sys.stderr)
    if dups:
        d = sorted(s for s, c in per_seq.items() if c > 1)
        print(f"check: {dups} visible duplicates, first seqs: {d[:10]}", file=sys.stderr)
    if repeats or strays or outside:
        print(f"check: cursor repeats {repeats}, foreign hits {strays}, seq out of range {outside}",
              file=sys.stderr)
    print(f"check: sent {a.expect} found {found} missing {len(missing)} "
          f"(counted lost {a.lost_count}) duplicates {dups} walks {walks}"
          + (f" recovery {rec}s" if rec is not None else ""))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
