#!/usr/bin/env python3
"""har_summary.py HAR [SCHEMA.yaml] [--want-status METHOD PATH STATUS]... [--only-status METHOD PATH STATUS]...

Counts the answers of a schemathesis run (its HAR report) by operation (the
SCHEMA's path templates: /v1/logs/search/jobs/{job_id}) and status, prints them, and checks what a phase must have reached:
  --want-status POST /v1/logs/search 200   at least one such answer
  --only-status POST /v1/logs/search 401,413   every such answer has one of
                                               these statuses (and one at least)
Exit 1 when a check fails. The last line is "<N> requests".
"""
import collections
import json
import re
import sys
import urllib.parse

import yaml


def templates(schema_path):
    paths = yaml.safe_load(open(schema_path))["paths"]
    out = []
    for p in paths:
        rx = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p)) + "$"
        out.append((re.compile(rx), p))
    return out


def main(argv):
    har = json.load(open(argv[1]))
    tpl = templates(argv[2]) if len(argv) > 2 and argv[2].endswith(".yaml") else []
    counts = collections.Counter()
    for e in har["log"]["entries"]:
        path = urllib.parse.urlsplit(e["request"]["url"]).path
        path = next((p for rx, p in tpl if rx.match(path)), path)
        counts[(e["request"]["method"], path, e["response"]["status"])] += 1
    for (m, p, s), n in sorted(counts.items()):
        print(f"    {m:5} {p:26} {s}: {n}")
    ok = True
    args = argv[3:] if tpl else argv[2:]
    while args:
        if args[0] == "--want-status":
            m, p, s = args[1], args[2], int(args[3])
            if counts[(m, p, s)] == 0:
                print(f"  MISSING: no {s} answer to {m} {p}")
                ok = False
            args = args[4:]
        elif args[0] == "--only-status":
            m, p, ss = args[1], args[2], {int(x) for x in args[3].split(",")}
            bad = {k: n for k, n in counts.items() if k[:2] == (m, p) and k[2] not in ss}
            if bad or not any(counts[(m, p, s)] for s in ss):
                print(f"  UNEXPECTED: {m} {p} answered other than (or never) {ss}: {bad}")
                ok = False
            args = args[4:]
        else:
            raise SystemExit(f"unknown argument {args[0]}")
    print(f"{sum(counts.values())} requests")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
