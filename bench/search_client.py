#!/usr/bin/env python3
"""search_client.py - loghaul-queryd's search API (POST /v1/logs/search) from a
benchmark's side, over one kept-alive HTTP connection.

  search_client.py queries --url URL --token T --manifest M [--n 20] [--lat FILE]
      full-text searches for the trace ids and rare words of the generator's
      manifest, in the data's time range, first page of 100: prints figure
      lines (p50/p99 ms of each kind, wrong answers) as bench/lib.sh's
      emit_lines reads them; checks total_hits against the manifest.
  search_client.py watch --url URL --token T --out FILE
      the visibility probe: every 100 ms searches the last 10 minutes for
      "lhprobe"; appends "<seq> <ns>" (ns: the wall clock when a probe was
      first returned) to FILE, until killed.
  search_client.py os-watch --url OPENSEARCH_URL --prefix P --out FILE
      the same against OpenSearch indices P-* (the scaled-out hot store).
"""
import argparse
import http.client
import json
import sys
import time
import urllib.parse


class Client:
    def __init__(self, url, token=None):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port or 80
        self.token = token
        self.conn = None

    def post(self, path, body):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request("POST", path, data, headers)
                r = self.conn.getresponse()
                payload = r.read()
                return r.status, payload
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    raise
        return 0, b""


def rfc3339(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%03dZ" % (ns // 10**6 % 1000)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def cmd_queries(a):
    m = json.load(open(a.manifest))
    tr = {"start": rfc3339(m["start_ns"]), "end": rfc3339(m["end_ns"] + 10**6)}
    c = Client(a.url, a.token)
    c.post("/v1/logs/search", {"query": {"full_text": "warmup", "time_range": tr}})
    lat = open(a.lat, "a") if a.lat else None
    wrong = 0
    for kind, key, field in (("trace_id", "trace_ids", "id"), ("rare_term", "rare_terms", "term")):
        ms = []
        for item in m[key][:a.n]:
            body = {"query": {"full_text": item[field], "time_range": tr}, "pagination": {"limit": 100}}
            t0 = time.perf_counter()
            status, payload = c.post("/v1/logs/search", body)
            ms.append((time.perf_counter() - t0) * 1e3)
            hits = json.loads(payload).get("total_hits") if status == 200 else None
            if hits != item["lines"]:
                print(f"search_client: {kind} {item[field]}: HTTP {status}, total_hits {hits}, "
                      f"the data holds {item['lines']}", file=sys.stderr)
                wrong += 1
            if lat:
                lat.write(f"queryd.{kind} {ms[-1]:.3f}\n")
        if ms:
            print(json.dumps({"name": f"queryd.query_{kind}_p50_ms", "value": pct(ms, 0.5), "unit": "ms"}, separators=(",", ":")))
            print(json.dumps({"name": f"queryd.query_{kind}_p99_ms", "value": pct(ms, 0.99), "unit": "ms"}, separators=(",", ":")))
    print(json.dumps({"name": "queryd.query_wrong_answers", "value": wrong, "unit": "queries"}, separators=(",", ":")))
    return 1 if wrong else 0


def watch(out, search):
    seen = set()
    with open(out, "w") as f:
        while True:
            try:
                msgs = search()
                now = time.time_ns()
                for msg in msgs:
                    try:
                        seq = int(msg.split("seq=")[1].split()[0])
                    except (IndexError, ValueError):
                        continue
                    if seq not in seen:
                        seen.add(seq)
                        f.write(f"{seq} {now}\n")
                        f.flush()
            except Exception:
                pass
            time.sleep(0.1)


def cmd_watch(a):
    c = Client(a.url, a.token)

    def search():
        now = time.time_ns()
        body = {"query": {"full_text": "lhprobe",
                          "time_range": {"start": rfc3339(now - 600 * 10**9), "end": rfc3339(now + 60 * 10**9)}},
                "pagination": {"limit": 1000}}
        status, payload = c.post("/v1/logs/search", body)
        if status != 200:
            return []
        return [x.get("message") or "" for x in json.loads(payload).get("logs", [])]
    watch(a.out, search)


def cmd_os_watch(a):
    c = Client(a.url)
    path = f"/{a.prefix}-*/_search?ignore_unavailable=true&allow_no_indices=true"

    def search():
        body = {"size": 1000, "query": {"match": {"message": "lhprobe"}}, "_source": ["message"],
                "sort": [{"timestamp": "desc"}]}
        status, payload = c.post(path, body)
        if status != 200:
            return []
        return [h["_source"].get("message", "") for h in json.loads(payload)["hits"]["hits"]]
    watch(a.out, search)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("queries")
    q.add_argument("--url", required=True)
    q.add_argument("--token", required=True)
    q.add_argument("--manifest", required=True)
    q.add_argument("--n", type=int, default=20)
    q.add_argument("--lat")
    w = sub.add_parser("watch")
    w.add_argument("--url", required=True)
    w.add_argument("--token", required=True)
    w.add_argument("--out", required=True)
    o = sub.add_parser("os-watch")
    o.add_argument("--url", required=True)
    o.add_argument("--prefix", required=True)
    o.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "queries":
        sys.exit(cmd_queries(a))
    if a.cmd == "watch":
        cmd_watch(a)
    else:
        cmd_os_watch(a)


if __name__ == "__main__":
    main()
