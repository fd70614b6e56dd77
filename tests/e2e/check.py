#!/usr/bin/env python3
"""check.py - exactly-once checker of the end-to-end tests: every expected
line id must be returned exactly once by loghaul-queryd's search (the whole
cursor walk) and be stored exactly once in the archive (a local archive
directory or an S3 bucket).

usage:
  check.py --ids-from FILE [--id-regex 'seq=(\\d+)']
           [--queryd URL --token T [--full-text TEXT] [--start T --end T]
            [--limit 1000] [--cacert F] [--retry-for 120]]
           [--archive-dir DIR | --s3 ENDPOINT --bucket B [--access-key K --secret-key S]
                                 [--region us-east-1]]
           [--prefix TENANT/]   (archive keys below it; default: all)
           [--wait SECS] [--allow-duplicates search|archive ...]
           [--json OUT] [--s3-delete]
  check.py --s3 ENDPOINT --bucket B --prefix TENANT/ --rm-only

--ids-from: one expected id a line, the first whitespace-separated column
  (logwriter.py --expected and tests/e2e/gen.py --expected write such files;
  blank lines and lines starting with # are skipped).
--id-regex: how an id is found in an event: the first group of the first
  match in its message, else in its raw line (default 'seq=(\\d+)'). Events
  without a match are counted as "foreign" (they do not fail the check).
--queryd: POST /v1/logs/search with pagination.limit --limit, following
  next_cursor until it is null. Without --start/--end: queryd's default range
  (the last 24 hours). A 503 or a connection error is retried (the same
  page, 1 s apart) for up to --retry-for seconds: a backend restarting
  during the walk does not end it.
--archive-dir: every *.parquet and *.ndjson.zst below DIR[/--prefix] (the
  dir backend's layout; .tmp-* files are skipped). --s3: the same objects in
  the bucket, listed and downloaded (credentials default to AWS_ACCESS_KEY_ID /
  AWS_SECRET_ACCESS_KEY, else loghaul / loghaul-secret). Parquet is read with
  pyarrow (run this with the venv's python: tests/integration/venv.sh),
  NDJSON+zstd with the zstd command. Encrypted objects (.enc) fail the check.
--wait SECS: repeat a source's check (1 s apart) until no id is missing or
  SECS passed (quiescence for a pipeline still draining); duplicates are
  judged on the last pass. For search, the exact count of POST
  /v1/logs/aggregate is polled first until it reaches the expected count
  (cheap; each walk of every page is not).
--allow-duplicates: duplicates of that source are reported, not a failure
  (e.g. the archive after an indexer crash).
--json OUT: the counts as JSON ({"search": {...}, "archive": {...}, "ok": ...}).
--s3-delete: after checking, delete the listed objects (test cleanup).
--rm-only: only delete every object below --prefix (cleanup when a test failed).

Prints one line per source and a last line "check: ok ..." or
"check: FAILED ..."; exit 0 when every checked source holds every id exactly
once, 1 on a missing or duplicate id, 2 on a usage or connection error."""
import argparse
import collections
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request


class Fatal(Exception):
    pass


def load_ids(path):
    ids = set()
    n = 0
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            ids.add(int(s.split()[0]))
            n += 1
    if n != len(ids):
        raise Fatal(f"{path}: {n - len(ids)} ids appear more than once in the expectation")
    return ids


def seq_of(rx, *texts):
    for t in texts:
        if t:
            m = rx.search(t)
            if m:
                return int(m.group(1))
    return None


# ---- queryd ----

def search_query(a):
    query = {}
    if a.full_text:
        query["full_text"] = a.full_text
    if a.start or a.end:
        query["time_range"] = {k: v for k, v in (("start", a.start), ("end", a.end)) if v}
    return query


def search_page(a, query, limit, cursor=None, page=1, path="/v1/logs/search"):
    """One POST /v1/logs/search (503s and connection errors retried)."""
    url = a.queryd.rstrip("/") + path
    ctx = ssl.create_default_context(cafile=a.cacert) if a.cacert else None
    body = {"query": query}
    if limit:
        body["pagination"] = {"limit": limit}
    if cursor:
        body["pagination"]["cursor"] = cursor
    req = urllib.request.Request(url, json.dumps(body).encode(), {
        "Content-Type": "application/json", "Authorization": "Bearer " + a.token})
    give_up = time.monotonic() + a.retry_for
    while True:
        try:
            with urllib.request.urlopen(req, timeout=60, context=ctx) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            msg = e.read()[:300].decode(errors="replace")
            if e.code != 503 or time.monotonic() > give_up:
                raise Fatal(f"search: HTTP {e.code} on page {page}: {msg}")
        except OSError as e:
            if time.monotonic() > give_up:
                raise Fatal(f"search: {url}: {e}")
        time.sleep(1)


def search_wait_count(a, want, deadline):
    """Polls the exact count of POST /v1/logs/aggregate until it reaches
    want: a cheap wait before the full walk."""
    query = search_query(a)
    while time.monotonic() < deadline:
        doc = search_page(a, query, 0, path="/v1/logs/aggregate")
        if doc.get("total_hits", 0) >= want:
            return
        time.sleep(1)


def search_walk(a, rx):
    """Counter of ids over the whole cursor walk; (counter, hits, foreign, pages)."""
    query = search_query(a)
    counts = collections.Counter()
    hits = foreign = pages = 0
    cursor = None
    while True:
        doc = search_page(a, query, a.limit, cursor, pages + 1)
        pages += 1
        for h in doc.get("logs", []):
            hits += 1
            s = seq_of(rx, h.get("message"), h.get("raw"))
            if s is None:
                foreign += 1
            else:
                counts[s] += 1
        cursor = doc.get("next_cursor")
        if not cursor:
            return counts, hits, foreign, pages
        if not doc.get("logs"):
            raise Fatal(f"search: page {pages} is empty but has a next_cursor")


# ---- archive ----

def rows_of_parquet(data):
    import pyarrow as pa
    import pyarrow.parquet as pq
    t = pq.read_table(pa.BufferReader(data), columns=["message", "raw"])
    return zip(t.column("message").to_pylist(), t.column("raw").to_pylist())


def rows_of_ndjson(data):
    out = subprocess.run(["zstd", "-dcq"], input=data, stdout=subprocess.PIPE, check=True).stdout
    for line in out.splitlines():
        if line.strip():
            ev = json.loads(line)
            yield ev.get("message"), ev.get("raw")


def archive_objects(a):
    """[(key, loader)]: every archive object below the prefix."""
    objs = []
    if a.archive_dir:
        base = os.path.join(a.archive_dir, a.prefix or "")
        for d, _, files in os.walk(base):
            for f in sorted(files):
                if f.startswith(".tmp-"):
                    continue
                p = os.path.join(d, f)
                objs.append((os.path.relpath(p, a.archive_dir),
                             lambda p=p: open(p, "rb").read()))
        return objs
    fs = s3fs(a)
    from pyarrow.fs import FileSelector, FileType
    sel = FileSelector(a.bucket + "/" + (a.prefix or "").rstrip("/"), recursive=True,
                       allow_not_found=True)
    for info in fs.get_file_info(sel):
        if info.type != FileType.File:
            continue

        def load(path=info.path):
            with fs.open_input_stream(path) as f:
                return f.read()
        objs.append((info.path[len(a.bucket) + 1:], load))
    objs.sort()
    return objs


def s3fs(a):
    from pyarrow.fs import S3FileSystem
    ep = a.s3
    scheme = "https" if ep.startswith("https://") else "http"
    ep = ep.split("://", 1)[-1].rstrip("/")
    return S3FileSystem(access_key=a.access_key, secret_key=a.secret_key, region=a.region,
                        endpoint_override=ep, scheme=scheme)


def s3_rm(a):
    """Deletes everything below the prefix (objects and the directory markers
    pyarrow leaves when it deletes single files); returns the object count."""
    from pyarrow.fs import FileType
    fs = s3fs(a)
    path = a.bucket + "/" + a.prefix.strip("/")
    n = len(archive_objects(a))
    if fs.get_file_info(path).type != FileType.NotFound:
        fs.delete_dir(path)
    return n


def archive_scan(a, rx):
    counts = collections.Counter()
    rows = foreign = 0
    objs = archive_objects(a)
    for key, load in objs:
        if key.endswith(".parquet"):
            it = rows_of_parquet(load())
        elif key.endswith(".ndjson.zst"):
            it = rows_of_ndjson(load())
        else:
            raise Fatal(f"archive: {key}: not a .parquet or .ndjson.zst object")
        for msg, raw in it:
            rows += 1
            s = seq_of(rx, msg, raw)
            if s is None:
                foreign += 1
            else:
                counts[s] += 1
    return counts, rows, foreign, [k for k, _ in objs]


def judge(name, counts, expected, extra, allow_dups):
    missing = sorted(expected - counts.keys())
    dup_ids = sorted(s for s, c in counts.items() if c > 1 and s in expected)
    unexpected = sorted(s for s in counts if s not in expected)
    copies = sum(counts[s] - 1 for s in dup_ids)
    ok = not missing and not unexpected and (allow_dups or not dup_ids)
    res = dict(extra, expected=len(expected), distinct=len(counts.keys() & expected),
               missing=len(missing), duplicate_ids=len(dup_ids), extra_copies=copies,
               unexpected=len(unexpected), ok=ok)
    detail = ", ".join(f"{k} {v}" for k, v in extra.items())
    print(f"check {name}: {detail}; {res['distinct']} of {len(expected)} ids, "
          f"{len(missing)} missing, {len(dup_ids)} duplicated ({copies} extra copies)"
          f"{' (allowed)' if allow_dups and dup_ids else ''}, {len(unexpected)} unexpected"
          f" - {'ok' if ok else 'FAILED'}", flush=True)
    for what, lst in (("missing", missing), ("duplicated", dup_ids), ("unexpected", unexpected)):
        if lst:
            print(f"  {name} {what} ids (first 10): {lst[:10]}", file=sys.stderr)
    return res


def run_source(name, fn, expected, a):
    """fn() -> (counts, extra dict); repeats while ids are missing and --wait allows."""
    end = time.monotonic() + a.wait
    passes = 0
    while True:
        passes += 1
        counts, extra = fn()
        if not (expected - counts.keys()) or time.monotonic() >= end:
            break
        time.sleep(1)
    extra["passes"] = passes
    return judge(name, counts, expected, extra, name in a.allow_duplicates)


def main():
    ap = argparse.ArgumentParser(description="exactly-once check of search and archive",
                                 usage=__doc__.split("\n\n")[1])
    ap.add_argument("--ids-from")
    ap.add_argument("--id-regex", default=r"seq=(\d+)")
    ap.add_argument("--queryd")
    ap.add_argument("--token", default="dev-token")
    ap.add_argument("--cacert")
    ap.add_argument("--full-text")
    ap.add_argument("--start")
    ap.add_argument("--end")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--retry-for", type=float, default=120)
    ap.add_argument("--archive-dir")
    ap.add_argument("--s3")
    ap.add_argument("--bucket", default="loghaul")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID", "loghaul"))
    ap.add_argument("--secret-key",
                    default=os.environ.get("AWS_SECRET_ACCESS_KEY", "loghaul-secret"))
    ap.add_argument("--prefix", default="")
    ap.add_argument("--wait", type=float, default=0)
    ap.add_argument("--allow-duplicates", action="append", default=[],
                    choices=["search", "archive"])
    ap.add_argument("--json")
    ap.add_argument("--s3-delete", action="store_true")
    ap.add_argument("--rm-only", action="store_true")
    a = ap.parse_args()
    if a.rm_only:
        if not (a.s3 and a.prefix):
            ap.error("--rm-only needs --s3 and --prefix")
        n = s3_rm(a)
        print(f"check: deleted {n} objects below s3://{a.bucket}/{a.prefix}")
        return 0
    if not a.ids_from:
        ap.error("--ids-from is required")
    if not (a.queryd or a.archive_dir or a.s3):
        ap.error("nothing to check: give --queryd, --archive-dir or --s3")
    if a.archive_dir and a.s3:
        ap.error("--archive-dir and --s3 exclude each other")
    if a.s3 and a.s3_delete and not a.prefix:
        ap.error("--s3-delete needs --prefix (it never empties the whole bucket)")
    rx = re.compile(a.id_regex)
    result = {}
    try:
        expected = load_ids(a.ids_from)
        if a.queryd:
            if a.wait:
                search_wait_count(a, len(expected), time.monotonic() + a.wait)

            def search():
                t0 = time.monotonic()
                c, hits, foreign, pages = search_walk(a, rx)
                return c, {"hits": hits, "foreign": foreign, "pages": pages,
                           "walk_s": round(time.monotonic() - t0, 2)}
            result["search"] = run_source("search", search, expected, a)
        if a.archive_dir or a.s3:
            def archive():
                c, rows, foreign, ks = archive_scan(a, rx)
                return c, {"objects": len(ks), "rows": rows, "foreign": foreign}
            result["archive"] = run_source("archive", archive, expected, a)
            if a.s3 and a.s3_delete:
                n = s3_rm(a)
                print(f"check: deleted {n} objects below s3://{a.bucket}/{a.prefix}")
    except (Fatal, OSError, subprocess.CalledProcessError, ValueError) as e:
        print(f"check: error: {e}", flush=True)
        return 2
    ok = all(r["ok"] for r in result.values())
    result["ok"] = ok
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    summary = "; ".join(f"{k} {v['distinct']}/{v['expected']} ids, {v['missing']} missing, "
                        f"{v['duplicate_ids']} duplicated" for k, v in result.items()
                        if isinstance(v, dict))
    print(f"check: {'ok' if ok else 'FAILED'}: {summary}")
    return 0 if ok else 1


if __name__ == "__main__":
    rc = main()
    # The verdict is printed and every file is closed: leave without running
    # pyarrow's C++ teardown, whose thread pools can abort the interpreter at
    # exit ("terminate called without an active exception") and turn a
    # passing check into exit 134.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
