#!/usr/bin/env python3
"""pii_check.py - the PII corpus of tests/security/pii.sh and the scanner
that looks for it in everything the pipeline wrote.

  pii_check.py gen DIR
      Writes into DIR: agent.log (lines for an agent without edge masking:
      text and JSON lines), edge.log (other values, for an agent that masks
      at the edge), ingest.json (an ingest body: PII in raw_message, in a
      structured message, in JSON fields of a JSON message, in metadata
      values), dlq.txt (values that are not events, one a line, for the
      dead-letter path), originals.txt / edge_originals.txt (every PII value
      as written, one a line) and tags.txt / edge_tags.txt (a word each
      event carries). Card numbers are valid Luhn numbers of several brands
      (Visa, Mastercard 5- and 2-series, Amex, Discover, Diners, JCB), plain,
      grouped by spaces and by dashes (Amex 4-6-5).

  pii_check.py scan --originals F [--tags F] [--min-placeholders N]
                    [--label L] PATH...
      Reads every file under PATH: its raw bytes; every zstd frame in it
      (store blocks, .zst archives: libzstd through ctypes); Parquet files
      (magic PAR1) with pyarrow AND duckdb, rows as JSON. Looks for every
      original (e-mails case-insensitively; card numbers also as bare
      digits). Prints each hit and a summary; exit 1 on any hit, when a tag
      is missing from what was read, or with fewer [EMAIL]/[CARD]
      placeholders than --min-placeholders each.
"""
import ctypes
import ctypes.util
import json
import os
import random
import re
import subprocess
import sys


def luhn_ok(digits):
    s = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return s % 10 == 0


def luhn_complete(prefix, length):
    """A valid card number: prefix, random digits, check digit."""
    rnd = random.Random(prefix + str(length))
    body = prefix + "".join(rnd.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError


def group(num, sep):
    if not sep:
        return num
    if len(num) == 15:                      # Amex 4-6-5
        parts = [num[:4], num[4:10], num[10:]]
    elif len(num) == 14:                    # Diners 4-6-4
        parts = [num[:4], num[4:10], num[10:]]
    else:
        parts = [num[i:i + 4] for i in range(0, len(num), 4)]
    return sep.join(parts)


BRANDS = [("visa", "4", 16), ("visa13", "4", 13), ("mastercard", "51", 16),
          ("mastercard2", "2221", 16), ("amex", "37", 15), ("discover", "6011", 16),
          ("diners", "305", 14), ("jcb", "3530", 16), ("maestro19", "6759", 19)]


def corpus(kind):
    """(emails, cards as (brand, digits, formatted)) for kind main|edge."""
    if kind == "main":
        emails = ["alice.smith+billing@example.com", "BOB_JONES@Example.ORG",
                  "carol-o.neil@mail.sub.example.co.uk", "d4ve@ex-ample.io",
                  "eve99@example.net"]
        known = ["4111111111111111", "5555555555554444", "378282246310005",
                 "6011111111111117", "3530111333300000", "30569309025904"]
    else:
        emails = ["edge.user@example.net", "Frank.Edge@Example.COM", "g_edge@corp.example.org"]
        known = []
    nums = [(n[0], n) for n in known]
    for brand, prefix, length in BRANDS:
        p = prefix + ("7" if kind == "edge" else "")
        nums.append((brand, luhn_complete(p, length)))
    cards = []
    for i, (brand, n) in enumerate(nums):
        assert luhn_ok(n)
        sep = ["", " ", "-"][i % 3]
        cards.append((brand, n, group(n, sep)))
    return emails, cards


def gen(d):
    os.makedirs(d, exist_ok=True)
    originals, tags = [], []
    emails, cards = corpus("main")
    originals += emails + [c[2] for c in cards]
    agent_lines = []
    n = 0
    # agent lines: every card and e-mail once in text, once in a JSON line
    for i, (brand, _, card) in enumerate(cards):
        n += 1
        tag = "piitag%03d" % n
        tags.append(tag)
        agent_lines.append("ERROR %s payment by %s failed for card %s (%s)"
                           % (tag, emails[i % len(emails)], card, brand))
        n += 1
        tag = "piitag%03d" % n
        tags.append(tag)
        if i % 3 == 2:   # the e-mail as the user id (JSON keys the parser maps to fields)
            key = ["user_id", "userId", "user.id"][i % 9 // 3]
            agent_lines.append(json.dumps({"level": "WARN", "msg": "login %s" % tag,
                                           key: emails[(i + 1) % len(emails)],
                                           "card": card}))
        else:
            agent_lines.append(json.dumps({"level": "WARN", "msg": "refund %s" % tag,
                                           "customer": {"email": emails[(i + 1) % len(emails)]},
                                           "card": card, "note": "card=%s" % card}))
    open(os.path.join(d, "agent.log"), "w").write("\n".join(agent_lines) + "\n")
    # the ingest body: raw_message, structured message, JSON message, metadata
    recs = []
    for i, (brand, _, card) in enumerate(cards):
        e = emails[i % len(emails)]
        n += 1
        tag = "piitag%03d" % n
        tags.append(tag)
        kind = i % 5
        if kind == 4:   # structured fields of the ingest API
            recs.append({"raw_message": "%s structured" % tag, "user_id": e,
                         "message": "%s refund to card %s" % (tag, card)})
        elif kind == 0:
            recs.append({"raw_message": "%s user %s paid with %s" % (tag, e, card)})
        elif kind == 1:
            recs.append({"raw_message": "%s checkout" % tag, "message": "%s card %s email %s"
                         % (tag, card, e), "level": "INFO", "service": "shop"})
        elif kind == 2:
            recs.append({"raw_message": json.dumps({"msg": "%s order" % tag, "email": e,
                                                    "payment": {"pan": card}})})
        else:
            recs.append({"raw_message": "%s with metadata" % tag,
                         "metadata": {"contact": e, "pan": card, "comment": "to %s" % e}})
    body = {"shipper_metadata": {"host_id": "pii-host", "region": "eu-test"}, "log_records": recs}
    open(os.path.join(d, "ingest.json"), "w").write(json.dumps(body))
    # values that are not events (dead letters): each carries PII
    dl = ["not an event: contact %s card %s" % (emails[0], cards[0][2]),
          '{"broken json", "email": "%s", "pan": "%s"' % (emails[1], cards[1][2])]
    open(os.path.join(d, "dlq.txt"), "w").write("\n".join(dl) + "\n")
    open(os.path.join(d, "originals.txt"), "w").write("\n".join(originals) + "\n")
    open(os.path.join(d, "tags.txt"), "w").write("\n".join(tags) + "\n")
    # edge corpus
    emails, cards = corpus("edge")
    lines, etags = [], []
    for i, (brand, _, card) in enumerate(cards):
        tag = "edgetag%03d" % (i + 1)
        etags.append(tag)
        if i % 2:
            lines.append(json.dumps({"msg": "%s login" % tag, "user_id": emails[i % len(emails)],
                                     "payment": {"card": card, "brand": brand}}))
        else:
            lines.append("%s login %s card %s (%s)" % (tag, emails[i % len(emails)], card, brand))
    open(os.path.join(d, "edge.log"), "w").write("\n".join(lines) + "\n")
    open(os.path.join(d, "edge_originals.txt"), "w").write(
        "\n".join(emails + [c[2] for c in cards]) + "\n")
    open(os.path.join(d, "edge_tags.txt"), "w").write("\n".join(etags) + "\n")
    print("corpus: %d events (%d agent lines, %d ingest records), %d e-mails, %d cards of %d "
          "brands; edge: %d lines" % (len(tags), len(agent_lines), len(recs), len(corpus("main")[0]),
                                      len(corpus("main")[1]), len(BRANDS), len(lines)))


# ---- scanning ----------------------------------------------------------

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Zstd:
    def __init__(self):
        self.lib = ctypes.CDLL(ctypes.util.find_library("zstd") or "libzstd.so.1")
        self.lib.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
        self.lib.ZSTD_getFrameContentSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self.lib.ZSTD_findFrameCompressedSize.restype = ctypes.c_size_t
        self.lib.ZSTD_findFrameCompressedSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self.lib.ZSTD_decompress.restype = ctypes.c_size_t
        self.lib.ZSTD_decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                             ctypes.c_char_p, ctypes.c_size_t]
        self.lib.ZSTD_isError.argtypes = [ctypes.c_size_t]

    def frames(self, data):
        """Every zstd frame found anywhere in data, decompressed."""
        out = []
        pos = data.find(ZSTD_MAGIC)
        while pos >= 0:
            src = data[pos:]
            size = self.lib.ZSTD_getFrameContentSize(src, len(src))
            flen = self.lib.ZSTD_findFrameCompressedSize(src, len(src))
            if size >= (1 << 40) and not self.lib.ZSTD_isError(flen):
                # content size not in the header (streamed): the zstd tool
                r = subprocess.run(["zstd", "-dcq"], input=src[:flen], capture_output=True)
                if r.returncode == 0:
                    out.append(r.stdout)
                    pos = data.find(ZSTD_MAGIC, pos + max(int(flen), 4))
                    continue
            elif not self.lib.ZSTD_isError(flen):
                dst = ctypes.create_string_buffer(max(int(size), 1))
                got = self.lib.ZSTD_decompress(dst, int(size), src, flen)
                if not self.lib.ZSTD_isError(got):
                    out.append(dst.raw[:got])
                    pos = data.find(ZSTD_MAGIC, pos + max(int(flen), 4))
                    continue
            pos = data.find(ZSTD_MAGIC, pos + 4)
        return out


def parquet_texts(path):
    import duckdb
    import pyarrow.parquet as pq
    import pyarrow as pa
    tbl = pq.read_table(path)
    for i, f in enumerate(tbl.schema):   # nanosecond times: as integers
        if pa.types.is_timestamp(f.type):
            tbl = tbl.set_column(i, f.name, tbl.column(i).cast(pa.int64()))
    rows = tbl.to_pylist()
    # a raw line kept as the text around its message (archive schema 2):
    # rebuilt, so PII straddling the message's edge is seen whole
    for r in rows:
        if r.get("raw") is None and r.get("raw_prefix") is not None:
            r["raw"] = r["raw_prefix"] + (r.get("message") or "") + (r.get("raw_suffix") or "")
    texts = [json.dumps(rows, default=str, ensure_ascii=False).encode()]
    con = duckdb.connect()
    # every column as text (timestamps with time zone would need pytz)
    res = con.execute("SELECT COLUMNS(*)::VARCHAR FROM read_parquet(?)", [path]).fetchall()
    texts.append(json.dumps(res, default=str, ensure_ascii=False).encode())
    return texts, len(rows), len(res)


def scan(args):
    originals = [l for l in open(args.originals).read().splitlines() if l]
    tags = [l for l in open(args.tags).read().splitlines() if l] if args.tags else []
    pats = []
    for o in originals:
        if "@" in o:
            pats.append((o, re.compile(re.escape(o.encode()), re.I)))
        else:
            pats.append((o, re.compile(re.escape(o.encode()))))
            digits = re.sub(r"\D", "", o)
            if digits != o:
                pats.append((o + " (digits)", re.compile(re.escape(digits.encode()))))
    z = Zstd()
    hits, files, frames, pq_rows = [], 0, 0, 0
    seen_tags = set()
    ph = {b"[EMAIL]": 0, b"[CARD]": 0}
    paths = []
    for p in args.paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                paths += [os.path.join(root, n) for n in sorted(names)]
        elif os.path.exists(p):
            paths.append(p)
    for path in paths:
        try:
            data = open(path, "rb").read()
        except OSError:
            continue
        files += 1
        texts = [("raw", data)]
        for f in z.frames(data):
            frames += 1
            texts.append(("zstd frame", f))
        if data[:4] == b"PAR1" and data[-4:] == b"PAR1":
            t, a, b = parquet_texts(path)
            if a != b:
                hits.append("%s: pyarrow read %d rows, duckdb %d" % (path, a, b))
            pq_rows += a
            texts += [("pyarrow", t[0]), ("duckdb", t[1])]
        for how, t in texts:
            for name, rx in pats:
                if rx.search(t):
                    hits.append("LEAK %r in %s (%s)" % (name, path, how))
            for tag in tags:
                if tag.encode() in t:
                    seen_tags.add(tag)
            for k in ph:
                ph[k] += t.count(k)
    missing = [t for t in tags if t not in seen_tags]
    for h in hits[:40]:
        print(h)
    ok = not hits and not missing and min(ph.values()) >= args.min_placeholders
    if missing:
        print("%smissing tags (events not found): %s" % (args.label, missing[:10]))
    print("%s%d files, %d zstd frames, %d parquet rows read: %d leaks, %d/%d tags, "
          "%d [EMAIL] %d [CARD] -> %s"
          % (args.label, files, frames, pq_rows, len(hits), len(seen_tags), len(tags),
             ph[b"[EMAIL]"], ph[b"[CARD]"], "ok" if ok else "FAIL"))
    return 0 if ok else 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
        return 0
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["scan"])
    ap.add_argument("--originals", required=True)
    ap.add_argument("--tags")
    ap.add_argument("--min-placeholders", type=int, default=0)
    ap.add_argument("--label", default="")
    ap.add_argument("paths", nargs="+")
    return scan(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
