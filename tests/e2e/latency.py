#!/usr/bin/env python3
"""latency.py - files-to-search latency of sampled lines, measured through
loghaul-queryd's search API.

usage: latency.py --queryd URL --token T --samples FILE [--interval 0.1]
                  [--done FILE] [--timeout 120] [--json OUT] [--label NAME]

FILE is what logwriter.py --sample-every/--samples writes while it runs
("seq<TAB>write_ns<TAB>phase" a sampled line, written right before the line
is appended to its log file; each sampled line carries the word "lhsample").
Every --interval seconds one search asks for "lhsample" events from the
oldest sample not yet found (minus 2 s) to now, walking the cursor over all
pages; a sample's latency is the wall clock when the first answer containing
it arrived minus its write time. The measurement's own error: up to one
interval plus one search's duration late (reported as the mean search time),
never early. One poller for all samples keeps queryd's extra load to 1/interval
searches a second whatever the line rate.

Runs until the file --done exists (the writer finished) and every sample was
found, or --timeout seconds after --done appeared. Prints per phase:
samples, found, p50/p99/max in seconds, then a result line; --json writes
{"<phase>": {"samples", "found", "p50_s", "p99_s", "max_s"}, "method": ...}.
Exit 0 unless the search API failed throughout (latency is reported, never
asserted)."""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def rfc3339(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        ".%06dZ" % (ns // 1000 % 10**6)


def pct(v, q):
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] if v else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queryd", required=True)
    ap.add_argument("--token", default="dev-token")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--done")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--json")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    url = a.queryd.rstrip("/") + "/v1/logs/search"
    sent = {}           # seq -> (write_ns, phase)
    seen = {}           # seq -> first-seen ns
    order = []          # phases in order of appearance
    pos = 0
    polls = errors = 0
    search_s = 0.0
    done_at = None
    while True:
        try:
            with open(a.samples) as f:
                f.seek(pos)
                while True:
                    line = f.readline()
                    if not line.endswith("\n"):
                        break
                    pos += len(line)
                    seq, ns, ph = line.split("\t")
                    ph = ph.strip()
                    sent[int(seq)] = (int(ns), ph)
                    if ph not in order:
                        order.append(ph)
        except FileNotFoundError:
            pass
        pending = [s for s in sent if s not in seen]
        if done_at is None and a.done and os.path.exists(a.done):
            done_at = time.monotonic()
        if done_at is not None and (not pending or time.monotonic() - done_at > a.timeout):
            break
        if pending:
            start = min(sent[s][0] for s in pending) - 2 * 10**9
            query = {"full_text": "lhsample",
                     "time_range": {"start": rfc3339(start),
                                    "end": rfc3339(time.time_ns() + 60 * 10**9)}}
            cursor = None
            t0 = time.monotonic()
            try:
                while True:
                    body = {"query": query, "pagination": {"limit": 1000}}
                    if cursor:
                        body["pagination"]["cursor"] = cursor
                    req = urllib.request.Request(url, json.dumps(body).encode(), {
                        "Content-Type": "application/json",
                        "Authorization": "Bearer " + a.token})
                    with urllib.request.urlopen(req, timeout=30) as r:
                        doc = json.load(r)
                    now = time.time_ns()
                    for h in doc.get("logs", []):
                        msg = h.get("message") or ""
                        i = msg.find("seq=")
                        if i < 0:
                            continue
                        try:
                            s = int(msg[i + 4:].split()[0])
                        except ValueError:
                            continue
                        if s not in seen:
                            seen[s] = now
                    cursor = doc.get("next_cursor")
                    if not cursor:
                        break
                polls += 1
                search_s += time.monotonic() - t0
            except (urllib.error.URLError, OSError, ValueError) as e:
                errors += 1
                if errors <= 3:
                    print(f"latency: search failed: {e}", file=sys.stderr)
        time.sleep(a.interval)
    res = {"method": f"search for the word 'lhsample' every {a.interval:g} s over queryd's "
                     f"POST /v1/logs/search; latency = first answer holding the line - "
                     f"its write time",
           "polls": polls, "search_errors": errors,
           "mean_search_s": round(search_s / polls, 4) if polls else None}
    lines = []
    for ph in order:
        lat = sorted((seen[s] - ns) / 1e9 for s, (ns, p) in sent.items() if p == ph and s in seen)
        n = sum(1 for _, p in sent.values() if p == ph)
        r = {"samples": n, "found": len(lat), "p50_s": pct(lat, 0.5), "p99_s": pct(lat, 0.99),
             "max_s": lat[-1] if lat else None}
        res[ph] = r
        fmt = (lambda x: "n/a" if x is None else f"{x:.3f}")
        lines.append(f"{ph}: p50 {fmt(r['p50_s'])} s, p99 {fmt(r['p99_s'])} s, "
                     f"max {fmt(r['max_s'])} s ({len(lat)} of {n} samples found)")
        print(f"latency {a.label}{' ' if a.label else ''}{lines[-1]}", flush=True)
    print(f"latency: {polls} searches, mean {res['mean_search_s']} s each, "
          f"{errors} failed", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 1 if errors and not polls else 0


if __name__ == "__main__":
    sys.exit(main())
