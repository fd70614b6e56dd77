#!/usr/bin/env python3
"""tenants_check.py - the tenant-isolation matrix of tests/security/tenants.sh.

Ingest: every collector token (and an unknown one, and none) x every tenant
named in X-Log-Tenant (and none, and one that does not exist), both header
styles; each request carries a unique marker word. Allowed -> 200, another
tenant -> 403, unknown/no credentials -> 401. A record that claims another
tenant in its body ("tenant" keys) still lands in the token's tenant.

Query: every queryd token x search (match-all, each foreign marker as full
text, service filters), aggregate (totals and top values), tail (live events
of all tenants arrive while each tenant tails), cursor replay across tenants,
unknown and missing tokens, a `tenant` filter. Each tenant must see exactly
its own markers. Standard library only.

usage: tenants_check.py --collector URL --queryd URL --spec FILE [--backend B]
                        [--expect-out FILE]
The spec (JSON): {"tenants": {name: {"ingest": [tokens], "query": token}}}.
"""
import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

FAILS = []
CHECKS = [0]


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, file=sys.stderr)


def http(method, url, body=None, headers=None, timeout=20):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Matrix:
    def __init__(self, args, spec):
        self.c = args.collector
        self.q = args.queryd
        self.tenants = spec["tenants"]
        self.names = sorted(self.tenants)
        self.expect = {t: set() for t in self.names}   # markers each tenant must see
        self.refused = set()                            # markers that must land nowhere
        self.n = 0
        self.requests = 0
        self.backend = args.backend

    def marker(self):
        self.n += 1
        return "mk%05dz" % self.n

    def body(self, marker, owner, claim=None):
        rec = {"raw_message": "tenant matrix event %s" % marker,
               "service": "svc-%s" % (owner or "x"), "level": "INFO",
               "metadata": {"marker": marker}}
        doc = {"shipper_metadata": {"host_id": "sec-host"}, "log_records": [rec]}
        if claim:
            rec["tenant"] = claim
            rec["metadata"]["tenant"] = claim
            doc["shipper_metadata"]["tenant"] = claim
        return json.dumps(doc)

    def ingest(self, token, style, asked, claim_other=False):
        """One request; returns (status, marker)."""
        m = self.marker()
        h = {"Content-Type": "application/json"}
        if token:
            if style == "header":
                h["X-Log-Shipper-Token"] = token
            else:
                h["Authorization"] = "Bearer " + token
        if asked:
            h["X-Log-Tenant"] = asked
        owner = self.owner(token)
        claim = None
        if claim_other:
            claim = next(t for t in self.names if t != owner)
        body = self.body(m, owner, claim)
        self.requests += 1
        st, _ = http("POST", self.c + "/v1/logs/ingest", body, h)
        return st, m

    def owner(self, token):
        for t, s in self.tenants.items():
            if token in s["ingest"]:
                return t
        return None

    def run_ingest(self):
        tokens = [tok for t in self.names for tok in self.tenants[t]["ingest"]]
        tokens += ["unknown-token-123", None]
        asks = [None] + self.names + ["no-such-tenant"]
        i = 0
        for tok in tokens:
            for asked in asks:
                style = "header" if i % 2 == 0 else "bearer"
                i += 1
                st, m = self.ingest(tok, style, asked)
                owner = self.owner(tok)
                if owner is None:
                    want = 401
                elif asked is None or asked == owner:
                    want = 200
                else:
                    want = 403
                check(st == want, "ingest token=%s (%s) X-Log-Tenant=%s: HTTP %d, want %d"
                      % (tok and tok[:6] + "...", style, asked, st, want))
                (self.expect[owner] if want == 200 else self.refused).add(m)
        # a body claiming another tenant does not move the event there
        for t in self.names:
            tok = self.tenants[t]["ingest"][0]
            st, m = self.ingest(tok, "header", None, claim_other=True)
            check(st == 200, "ingest with a body claiming another tenant: HTTP %d" % st)
            self.expect[t].add(m)
        print("ingest: %d requests (%d tokens incl. unknown/none x %d tenant choices x "
              "2 header styles alternating, + %d body claims)"
              % (self.requests, len(tokens), len(asks), len(self.names)))

    def search(self, token, body, path="/v1/logs/search", headers=None):
        h = dict(headers or {}, **{"Content-Type": "application/json"})
        if token:
            h["Authorization"] = "Bearer " + token
        st, text = http("POST", self.q + path, json.dumps(body), h)
        try:
            return st, json.loads(text)
        except ValueError:
            return st, {"raw": text}

    @staticmethod
    def markers_of(logs):
        out = []
        for h in logs:
            md = h.get("metadata") or {}
            out.append(md.get("marker") or "?" + (h.get("message") or ""))
        return out

    def all_of(self, token):
        body = {"query": {"time_range": {"start": self.start}}, "pagination": {"limit": 1000}}
        st, j = self.search(token, body)
        return st, j

    def wait_indexed(self, timeout=60):
        """Polls until each tenant sees at least what it must (then checks exactly)."""
        end = time.time() + timeout
        while time.time() < end:
            done = True
            for t in self.names:
                st, j = self.all_of(self.tenants[t]["query"])
                if st != 200 or j.get("total_hits", 0) < len(self.expect[t]):
                    done = False
                    break
            if done:
                return True
            time.sleep(0.3)
        return False

    def run_queries(self):
        self.start = self.start_iso
        check(self.wait_indexed(), "every tenant's events indexed within 60 s")
        every = set().union(*self.expect.values()) | self.refused
        for t in self.names:
            qt = self.tenants[t]["query"]
            st, j = self.all_of(qt)
            got = self.markers_of(j.get("logs", []))
            check(st == 200, "%s match-all search: HTTP %d" % (t, st))
            check(sorted(got) == sorted(self.expect[t]),
                  "%s match-all sees exactly its own %d events: extra %s, missing %s"
                  % (t, len(self.expect[t]), sorted(set(got) - self.expect[t])[:5],
                     sorted(self.expect[t] - set(got))[:5]))
            check(len(got) == len(set(got)), "%s: no duplicate hits" % t)
            check(j.get("total_hits") == len(self.expect[t]),
                  "%s total_hits %s, want %d" % (t, j.get("total_hits"), len(self.expect[t])))
            # a range over 31 days (OpenSearch: the <prefix>-<tenant>-* pattern, which also
            # matches the indices of a tenant whose name starts with this one's) and a
            # header naming another tenant: still exactly its own events
            long_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60 * 86400))
            for o in self.names:
                st, j = self.search(qt, {"query": {"time_range": {"start": long_ago}},
                                         "pagination": {"limit": 1000}},
                                    headers={"X-Log-Tenant": o})
                got = self.markers_of(j.get("logs", []))
                check(st == 200 and sorted(got) == sorted(self.expect[t]),
                      "%s over 60 days with X-Log-Tenant %s: HTTP %d, foreign %s, missing %d"
                      % (t, o, st, sorted(set(got) - self.expect[t])[:5],
                         len(self.expect[t] - set(got))))
            # each foreign (or refused) marker as full text: no hit
            for m in sorted(every - self.expect[t]):
                st, j = self.search(qt, {"query": {"full_text": m,
                                                   "time_range": {"start": self.start}}})
                check(st == 200 and j.get("total_hits") == 0 and not j.get("logs"),
                      "%s searching foreign marker %s: HTTP %d, %s hits"
                      % (t, m, st, j.get("total_hits")))
            # own markers by full text: found (the search works at all)
            for m in sorted(self.expect[t])[:3]:
                st, j = self.search(qt, {"query": {"full_text": m,
                                                   "time_range": {"start": self.start}}})
                check(st == 200 and j.get("total_hits") == 1, "%s finds its own %s" % (t, m))
            # filters on other tenants' service names: nothing
            for o in self.names:
                f = {"field": "service", "operator": "EQUALS", "value": "svc-" + o}
                st, j = self.search(qt, {"query": {"filters": [f],
                                                   "time_range": {"start": self.start}}})
                got = set(self.markers_of(j.get("logs", [])))
                check(st == 200 and got <= self.expect[t],
                      "%s filter service=svc-%s: HTTP %d, foreign hits %s"
                      % (t, o, st, sorted(got - self.expect[t])[:5]))
            # aggregate: the total and the top values are the tenant's own
            st, j = self.search(qt, {"query": {"time_range": {"start": self.start}},
                                     "interval": "1h", "top": [{"field": "service", "size": 20}]},
                                "/v1/logs/aggregate")
            check(st == 200 and j.get("total_hits") == len(self.expect[t]),
                  "%s aggregate total %s, want %d (HTTP %d)"
                  % (t, j.get("total_hits"), len(self.expect[t]), st))
            tops = {x["field"]: x for x in j.get("top", [])}
            svc = {v["value"] for v in tops.get("service", {}).get("values", [])}
            check(svc == {"svc-" + t}, "%s aggregate top services %s" % (t, sorted(svc)))
            hist = sum(b["count"] for b in (j.get("histogram") or {}).get("buckets", []))
            check(hist == len(self.expect[t]), "%s histogram counts %d" % (t, hist))
            # top metadata values (the store; OpenSearch refuses top of metadata keys)
            st, j = self.search(qt, {"query": {"time_range": {"start": self.start}},
                                     "top": [{"field": "metadata.marker", "size": 1000}]},
                                "/v1/logs/aggregate")
            if self.backend == "opensearch":
                check(st == 400, "%s top of metadata on OpenSearch: HTTP %d" % (t, st))
            else:
                mk = {v["value"] for x in j.get("top", []) for v in x["values"]}
                check(st == 200 and mk == self.expect[t],
                      "%s aggregate top markers: HTTP %d, foreign %s, missing %s"
                      % (t, st, sorted(mk - self.expect[t])[:5],
                         sorted(self.expect[t] - mk)[:5]))
        self.run_cursor()
        self.run_auth()

    def run_cursor(self):
        a, b = self.names[0], self.names[1]
        ta, tb = self.tenants[a]["query"], self.tenants[b]["query"]
        q = {"query": {"time_range": {"start": self.start}}, "pagination": {"limit": 2}}
        st, j = self.search(ta, q)
        cur = j.get("next_cursor")
        check(st == 200 and cur, "%s first page has a next_cursor" % a)
        if not cur:
            return
        page2 = dict(q, pagination={"limit": 1000, "cursor": cur})
        st, j = self.search(tb, page2)
        leaked = set(self.markers_of(j.get("logs", [])))
        check(st == 403 and not leaked,
              "%s's cursor replayed by %s: HTTP %d (want 403), hits %s" % (a, b, st, leaked))
        check((j.get("error") or {}).get("code") == "forbidden",
              "cross-tenant cursor answer names the error: %s" % j)
        # the same cursor replayed by b with other query text: still refused
        page2b = {"query": {"full_text": "matrix", "time_range": {"start": self.start}},
                  "pagination": {"limit": 1000, "cursor": cur}}
        st, j = self.search(tb, page2b)
        check(st in (400, 403) and not j.get("logs"),
              "%s's cursor with another query by %s: HTTP %d" % (a, b, st))
        # positive control: a continues its own walk
        st, j = self.search(ta, page2)
        got = self.markers_of(j.get("logs", []))
        check(st == 200 and len(got) == len(self.expect[a]) - 2 and set(got) <= self.expect[a],
              "%s continues its own cursor: HTTP %d, %d hits" % (a, st, len(got)))
        print("cursor: %s's cursor refused for %s (403), accepted for %s" % (a, b, a))

    def run_auth(self):
        body = {"query": {"time_range": {"start": self.start}}}
        ing = self.tenants[self.names[0]]["ingest"][0]
        for tok, why in (("unknown-query-token", "unknown"), (None, "missing"),
                         (ing, "an ingest token")):
            for path in ("/v1/logs/search", "/v1/logs/aggregate"):
                st, j = self.search(tok, body, path)
                check(st == 401 and not j.get("logs") and "total_hits" not in j,
                      "%s token on %s: HTTP %d" % (why, path, st))
            st, _ = self.tail_status(tok)
            check(st == 401, "%s token on tail: HTTP %d" % (why, st))
        st, j = self.search(self.tenants[self.names[0]]["query"],
                            {"query": {"filters": [{"field": "tenant", "operator": "EQUALS",
                                                    "value": self.names[1]}]}})
        check(st == 400, "a tenant filter is refused: HTTP %d" % st)

    def tail_status(self, token):
        h = {"Authorization": "Bearer " + token} if token else {}
        req = urllib.request.Request(self.q + "/v1/logs/tail", headers=h)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, ""
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def run_tail(self):
        """Each tenant tails; new events go to every tenant; each tail gets its own only."""
        seen = {t: [] for t in self.names}
        errors = {t: [] for t in self.names}
        ready = {t: threading.Event() for t in self.names}
        stop = threading.Event()
        status = {}

        def reader(t):
            req = urllib.request.Request(
                self.q + "/v1/logs/tail",
                headers={"Authorization": "Bearer " + self.tenants[t]["query"]})
            try:
                r = urllib.request.urlopen(req, timeout=30)
            except urllib.error.HTTPError as e:
                status[t] = e.code
                ready[t].set()
                return
            status[t] = r.status
            ready[t].set()
            with r:
                event = "message"
                while not stop.is_set():
                    line = r.readline()
                    if not line:
                        break
                    line = line.decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        event = "message"
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "error":
                        # a failed poll: reported, the tail goes on (not an event)
                        errors[t].append(line[5:].strip())
                    elif line.startswith("data:"):
                        try:
                            hit = json.loads(line[5:])
                        except ValueError:
                            hit = {"message": line}
                        seen[t].append(self.markers_of([hit])[0])
                        if seen[t][-1].startswith("?"):
                            print("tail of %s: unexpected hit %s" % (t, line[5:][:400]),
                                  file=sys.stderr)

        threads = [threading.Thread(target=reader, args=(t,), daemon=True) for t in self.names]
        for th in threads:
            th.start()
        for t in self.names:
            ready[t].wait(10)
            check(status.get(t) == 200, "%s tail opened: HTTP %s" % (t, status.get(t)))
        time.sleep(0.5)   # the first poll of each tail (what is already there is not sent)
        new = {t: set() for t in self.names}
        for rnd in range(3):
            for t in self.names:
                st, m = self.ingest(self.tenants[t]["ingest"][0], "bearer", None)
                check(st == 200, "tail-phase ingest for %s: HTTP %d" % (t, st))
                new[t].add(m)
                self.expect[t].add(m)
        end = time.time() + 20
        while time.time() < end and any(not new[t] <= set(seen[t]) for t in self.names):
            time.sleep(0.2)
        time.sleep(1.0)   # a little longer: anything foreign would show up too
        stop.set()
        for t in self.names:
            got = set(seen[t])
            check(new[t] <= got, "%s tail got its new events: missing %s"
                  % (t, sorted(new[t] - got)))
            check(got <= self.expect[t], "%s tail got foreign events %s"
                  % (t, sorted(got - self.expect[t])))
        nerr = sum(len(v) for v in errors.values())
        self.run_tail_resume()
        print("tail: %d tails, %d new events each, own only (%d failed polls reported as "
              "event: error%s)" % (len(self.names), 3, nerr,
                                   ": " + errors[[t for t in self.names if errors[t]][0]][0]
                                   if nerr else ""))


    def run_tail_resume(self):
        """A tail of tenant b resuming from an event id of tenant a (Last-Event-ID) gets b's
        events from that time on, none of a's."""
        a, b = self.names[0], self.names[1]
        st, j = self.search(self.tenants[a]["query"],
                            {"query": {"time_range": {"start": self.start}},
                             "pagination": {"limit": 1000}})
        first = j["logs"][-1]   # a's oldest event
        ts_ns = self.q_ts_ns(first["timestamp"]) - 1
        req = urllib.request.Request(
            self.q + "/v1/logs/tail",
            headers={"Authorization": "Bearer " + self.tenants[b]["query"],
                     "Last-Event-ID": "%d/%s" % (ts_ns, first["id"])})
        got = []
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                end = time.time() + 2.5
                while time.time() < end:
                    line = r.readline().decode("utf-8", "replace")
                    if line.startswith("data:") and '"error"' not in line[:20]:
                        got.append(self.markers_of([json.loads(line[5:])])[0])
        except (TimeoutError, OSError):
            pass
        check(got and set(got) <= self.expect[b],
              "%s tail resuming from %s's Last-Event-ID: %d events, foreign %s"
              % (b, a, len(got), sorted(set(got) - self.expect[b])[:5]))

    @staticmethod
    def q_ts_ns(rfc3339):
        import calendar
        base, frac = rfc3339.rstrip("Z").split(".") if "." in rfc3339 else (rfc3339.rstrip("Z"), "0")
        secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        return secs * 10**9 + int(frac.ljust(9, "0")[:9])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collector", required=True)
    ap.add_argument("--queryd", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--backend", default="store")
    ap.add_argument("--expect-out", help="writes {tenant: [markers]} here")
    args = ap.parse_args()
    spec = json.load(open(args.spec))
    m = Matrix(args, spec)
    m.start_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    m.run_ingest()
    m.start = m.start_iso
    m.run_tail()
    m.run_queries()
    total = sum(len(v) for v in m.expect.values())
    if args.expect_out:
        json.dump({t: sorted(v) for t, v in m.expect.items()}, open(args.expect_out, "w"))
    print("%s: %d tenants, %d events stored, %d refused, %d checks, %d failed"
          % (args.backend, len(m.names), total, len(m.refused), CHECKS[0], len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
