#!/usr/bin/env python3
"""report.py - turns one bench/run's samples into bench/results/latest.json,
latest.meta.json, latest.md and the PNG plots (gnuplot), and appends the run
to history.jsonl.

usage: report.py --out STAGING_DIR --results DIR [--load-end "a b c"] [--seconds N]

STAGING_DIR holds samples.jsonl (written through bench/lib.sh), machine.json
and the plot series. Every figure below is the median of its runs, with min
and max; its baseline is the median of the baseline's runs in the same
bench/run; ratio = value / baseline; `target` is an expression over `value`
and `ratio` (the design goal and where it comes from are in `why`); `bound_by`
gives the physical limit (measured in the same run) the figure is bound by and
the fraction of it reached. A figure that was not measured has value null and
says why in `skipped`: nothing is estimated in place of a measurement.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

# (section, name, baseline, target, bound_by, why). The names are stable:
# runs are compared over time by name.
FIGURES = [
    ("limits", "limits.disk_write_mb_s", "baseline.dd_write_mb_s", None, None,
     "sequential 1 MiB writes + fdatasync; baseline dd bs=1M conv=fdatasync"),
    ("limits", "limits.fsync_per_s", "baseline.dd_dsync_per_s", None, None,
     "4 KiB append + fdatasync per second; baseline dd bs=4k oflag=dsync"),
    ("limits", "limits.zstd1_mb_s", "baseline.zstd1_cli_mb_s", None, None,
     "zstd level 1, 1 MiB blocks, one core; baseline the zstd CLI -1 -T1"),
    ("limits", "limits.zstd3_mb_s", "baseline.zstd3_cli_mb_s", None, None,
     "zstd level 3, 1 MiB blocks, one core; baseline the zstd CLI -3 -T1"),
    ("limits", "limits.gzip_mb_s", "baseline.gzip1_cli_mb_s", None, None,
     "gzip level 1 as the agent ships (ISA-L), one core; baseline GNU gzip -1 (zlib)"),
    ("limits", "limits.memcpy_mb_s", None, None, None, "memcpy between 64 MiB buffers, one core"),
    ("limits", "limits.zstd3_size_ratio", "baseline.zstd3_file.size_ratio", None, None,
     "zstd -3 in 1 MiB blocks vs one frame of the whole file"),

    ("agent", "agent.mb_s", "collector.spool.mb_s", None, "limits.disk_write_mb_s",
     "files -> agent -> collector -> spool (durable); baseline: the collector alone (ingest_load)"),
    ("agent", "agent.lines_s", None, None, None, "physical lines per second (stack traces are several)"),
    ("agent", "agent.mb_s_per_cpu", "baseline.cat_mb_s_per_cpu", "value >= 150", "limits.gzip_mb_s",
     "target: 150 MB/s with under one core (issue 3); baseline: cat of the same files"),
    ("agent", "agent.rss_mb", "baseline.agent_idle_rss_mb", "value <= 30", None,
     "peak RSS (VmHWM) while shipping; baseline: the same agent idle; target: under 30 MB (issue 3)"),

    ("collector", "collector.spool.mb_s", "baseline.bus_spool.produce_mb_s", None, "limits.disk_write_mb_s",
     "ingest API -> spool, wall; baseline: bus_roundtrip --produce-only on the spool"),
    ("collector", "collector.spool.mb_s_per_core", "baseline.bus_spool.produce_mb_s_per_core", "value >= 200",
     "limits.memcpy_mb_s", "MB per collector CPU-second; baseline: the spool library's own producer per core"),
    ("collector", "collector.spool.batch_p50_ms", None, None, None, "client-side latency of a ~0.5 MB batch"),
    ("collector", "collector.spool.batch_p99_ms", None, "value <= 1000", None,
     "a batch is acknowledged within a second at p99"),
    ("collector", "collector.spool.rss_mb", None, None, None, "peak RSS (VmHWM)"),
    ("collector", "collector.kafka.mb_s", "baseline.bus_kafka.produce_mb_s", None, "limits.disk_write_mb_s",
     "ingest API -> Kafka (acks=all, idempotent, zstd), wall; baseline: librdkafka producer alone"),
    ("collector", "collector.kafka.mb_s_per_core", "baseline.bus_kafka.produce_mb_s_per_core", "ratio >= 0.8",
     "limits.zstd3_mb_s", "MB per collector CPU-second vs librdkafka's own producer per core (issue 8: within 80%)"),
    ("collector", "collector.kafka.batch_p50_ms", None, None, None, "client-side latency of a ~0.5 MB batch"),
    ("collector", "collector.kafka.batch_p99_ms", None, "value <= 1000", None,
     "a batch is acknowledged within a second at p99"),
    ("collector", "collector.kafka.rss_mb", None, None, None, "peak RSS (VmHWM)"),
    ("collector", "collector.spool.bus_bytes_per_raw_byte", None, None, None,
     "bytes the collector puts on the bus per raw log byte (the event JSON around the line)"),
    ("collector", "kafka.broker_mb_s_per_core", None, None, "limits.memcpy_mb_s",
     "raw MB per CPU-second of the Kafka broker's JVM while the collector produced to it"),

    ("indexer", "indexer.parse.events_s_per_core", "baseline.grok_one_pattern.events_s_per_core",
     "value >= 50000", None,
     "parse (JSON, grok chain, logfmt, timestamps) + PII masking; baseline: one grok pattern per record; "
     "target: the seed's 10 TB/day average (231k events/s) on <= 5 indexer cores"),
    ("indexer", "indexer.parse.mb_s_per_core", None, None, "limits.memcpy_mb_s",
     "the same in raw MB (bound: every byte is at least copied once)"),
    ("indexer", "indexer.parse.failed_fraction", None, "value <= 0.001", None,
     "records no parser understood (kept raw with parse_failed=true)"),
    ("indexer", "indexer.opensearch.mb_s", "baseline.opensearch.sink_bodies_curl_mb_s", None,
     "limits.disk_write_mb_s",
     "the OpenSearch sink's bulk MB/s; baseline: curl (2 in flight) of the same pre-built bulk bodies"),
    ("indexer", "indexer.opensearch.ratio_to_ceiling", None, "value >= 0.9", None,
     "per round: the sink's events/s / curl's events/s on the same events"),
    ("indexer", "indexer.opensearch.mb_s_per_core", None, None, "limits.memcpy_mb_s",
     "bulk MB per CPU-second of the sink (getrusage of its process)"),
    ("indexer", "indexer.archive.mb_s_per_core", "limits.zstd3_mb_s", None, "limits.zstd3_mb_s",
     "the archive writer, Parquet with zstd 3 pages, raw MB per CPU-second; baseline: zstd -3 alone"),
    ("indexer", "indexer.archive.ndjson_mb_s_per_core", "limits.zstd3_mb_s", None, "limits.zstd3_mb_s",
     "the archive writer, NDJSON + zstd 3, raw MB per CPU-second"),

    ("store", "store.ingest_mb_s_per_core", "limits.zstd1_mb_s", "value >= 100", "limits.zstd1_mb_s",
     "raw MB per CPU-second of lh_store_append (columns, dictionaries, blooms, zstd 1, fdatasync); "
     "baseline: zstd -1 alone"),
    ("store", "store.ingest_mb_s", None, None, "limits.disk_write_mb_s", "the same, wall clock"),
    ("store", "store.size_ratio", "baseline.zstd3_file.size_ratio", "value <= 0.1", None,
     "bytes on disk per raw byte after the background merge (the steady state); baseline: zstd -3 of the raw file; target: 10% of raw (issue 6; OpenSearch is about 110%)"),
    ("store", "store.size_ratio_appended", "baseline.zstd3_file.size_ratio", None, None,
     "the same as appends wrote it (zstd 1, 2 MiB blocks), before the merge"),
    ("store", "store.merge_mb_s_per_core", "store.ingest_mb_s_per_core", None, None,
     "the merge pass (zstd 9, 2 MiB blocks): raw MB recompressed per CPU-second; baseline: ingest"),
    ("store", "baseline.zstd19_file.size_ratio", None, None, None,
     "zstd -19 -T1 of the raw file (--quick: its first 20 MB): the size floor of general-purpose compression"),
    ("store", "baseline.xz9_file.size_ratio", None, None, None,
     "xz -9 -T1 of the raw file (--quick: its first 20 MB)"),
    ("store", "store.query_trace_id_p50_ms", "opensearch.query_trace_id_p50_ms", "ratio <= 1", None,
     "(a) full-text search for a trace id (first page + exact total); baseline: the same query on "
     "OpenSearch, same data (issue 6: no worse than OpenSearch)"),
    ("store", "store.query_trace_id_p99_ms", "opensearch.query_trace_id_p99_ms", None, None, ""),
    ("store", "store.query_trace_id_grep_ratio", None, "value <= 0.1", None,
     "store p50 / grep -c -F over the raw file, p50 (issue 6: at least 10x better than grep)"),
    ("store", "store.query_rare_term_p50_ms", "opensearch.query_rare_term_p50_ms", "ratio <= 1", None,
     "(b) full-text search for a rare word; baseline: the same query on OpenSearch"),
    ("store", "store.query_rare_term_p99_ms", "opensearch.query_rare_term_p99_ms", None, None, ""),
    ("store", "store.query_rare_term_grep_ratio", None, "value <= 0.1", None,
     "store p50 / grep -c -iwF over the raw file, p50 (issue 6: at least 10x better than grep)"),
    ("store", "store.query_common_term_p50_ms", "opensearch.query_common_term_p50_ms", "ratio <= 1", None,
     "(c) full-text search for a common word, newest 100 hits, total up to 10,001; baseline: the same "
     "query on OpenSearch"),
    ("store", "store.query_common_term_p99_ms", "opensearch.query_common_term_p99_ms", None, None, ""),
    ("store", "store.query_common_term_grep_ratio", None, None, None,
     "store p50 / grep -m 100 -iwF p50 (grep stops at the file's first 100 matching lines)"),
    ("store", "store.query_count_by_level_p50_ms", "opensearch.query_count_by_level_p50_ms", None, None,
     "(d) one hour counted by level (1 h histogram + top levels, as queryd's aggregate asks); "
     "baseline: the same on OpenSearch"),
    ("store", "store.query_count_by_level_p99_ms", "opensearch.query_count_by_level_p99_ms", None, None, ""),
    ("store", "store.query_count_by_level_grep_ratio", None, None, None,
     "store p50 / one awk pass over the raw file counting level words, p50"),
    ("store", "store.query_wrong_answers", None, "value == 0", None,
     "query answers whose hit count differs from the generator's manifest (or levels that do not add up)"),
    ("store", "queryd.query_trace_id_p50_ms", "baseline.grep.trace_id_p50_ms", "ratio <= 0.5", None,
     "the same searches through loghaul-queryd's POST /v1/logs/search (first page of 100, total_hits "
     "checked), one kept-alive connection; baseline: grep over the raw file"),
    ("store", "queryd.query_trace_id_p99_ms", None, None, None, ""),
    ("store", "queryd.query_rare_term_p50_ms", "baseline.grep.rare_term_p50_ms", "ratio <= 0.5", None, ""),
    ("store", "queryd.query_rare_term_p99_ms", None, None, None, ""),
    ("store", "queryd.query_wrong_answers", None, "value == 0", None, ""),
    ("store", "queryd.rss_mb", None, None, None, "queryd's peak RSS (VmHWM) after the searches"),

    ("opensearch", "opensearch.size_ratio", "baseline.zstd3_file.size_ratio", "value <= 1.5", None,
     "OpenSearch store size per raw byte after flush + force merge (best_compression, 0 replicas); "
     "target: the seed's own estimate (1.3-1.5x)"),
    ("opensearch", "opensearch.size_ratio_hot", "baseline.zstd3_file.size_ratio", None, None,
     "the same right after refresh + flush, before the force merge"),
    ("opensearch", "opensearch.index_mb_s_per_core", None, None, "limits.memcpy_mb_s",
     "raw MB indexed per OpenSearch JVM CPU-second (from /proc)"),
    ("opensearch", "baseline.opensearch.curl_bulk_mb_s", None, None, "limits.disk_write_mb_s",
     "bulk bodies POSTed by parallel curl (2 in flight), raw MB/s"),
    ("opensearch", "opensearch.query_trace_id_p50_ms", "baseline.grep.trace_id_p50_ms", None, None,
     "(a)-(d) as the store answers them, on the same events, through queryd's OpenSearch backend; "
     "baseline: grep over the raw file"),
    ("opensearch", "opensearch.query_trace_id_p99_ms", None, None, None, ""),
    ("opensearch", "opensearch.query_rare_term_p50_ms", "baseline.grep.rare_term_p50_ms", None, None, ""),
    ("opensearch", "opensearch.query_rare_term_p99_ms", None, None, None, ""),
    ("opensearch", "opensearch.query_common_term_p50_ms", "baseline.grep.common_term_p50_ms", None, None,
     "match + size 100 sorted by timestamp desc, track_total_hits 10,001; baseline: grep -m 100"),
    ("opensearch", "opensearch.query_common_term_p99_ms", None, None, None, ""),
    ("opensearch", "opensearch.query_count_by_level_p50_ms", "baseline.awk.count_by_level_p50_ms", None,
     None, "date_histogram (1 h) + terms on level over the hour; baseline: one awk pass"),
    ("opensearch", "opensearch.query_count_by_level_p99_ms", None, None, None, ""),
    ("opensearch", "opensearch.query_wrong_answers", None, "value == 0", None,
     "answers that differ from the manifest's counts or from the store's answers in the same run"),

    ("e2e", "e2e.embedded.mb_s", "agent.mb_s", "value >= 115.7", "limits.disk_write_mb_s",
     "files on disk -> searchable in the store, sustained; baseline: the agent -> collector leg alone; "
     "target: the seed's whole 10 TB/day, 115.7 MB/s, on this 2-core machine (issue 8)"),
    ("e2e", "e2e.embedded.lines_s", None, None, None, "the same in physical lines"),
    ("e2e", "e2e.embedded.visibility_p50_s", None, None, None,
     "line written to a file -> returned by a search"),
    ("e2e", "e2e.embedded.visibility_p99_s", None, "value <= 2", None,
     "target: p99 under 2 s in the embedded default (issues 8, 9)"),
    ("e2e", "e2e.embedded.probes_lost", None, "value == 0", None,
     "probe lines written during the load and never found by a search (15 s grace)"),
    ("e2e", "e2e.embedded.cpu_s_per_gb.agent", None, None, None, "CPU-seconds per raw GB, from /proc"),
    ("e2e", "e2e.embedded.cpu_s_per_gb.collector", None, None, None, ""),
    ("e2e", "e2e.embedded.cpu_s_per_gb.indexer", None, None, None, ""),
    ("e2e", "e2e.embedded.rss_mb.agent", None, None, None, "peak RSS (VmHWM)"),
    ("e2e", "e2e.embedded.rss_mb.collector", None, None, None, ""),
    ("e2e", "e2e.embedded.rss_mb.indexer", None, None, None, ""),
    ("e2e", "e2e.embedded.rss_mb.queryd", None, None, None, "serving the probe searches"),
    ("e2e", "e2e.scaled.mb_s", "e2e.embedded.mb_s", None, "limits.disk_write_mb_s",
     "files -> agent -> collector -> Kafka -> indexer -> OpenSearch, searchable; baseline: the embedded default"),
    ("e2e", "e2e.scaled.lines_s", None, None, None, ""),
    ("e2e", "e2e.scaled.visibility_p50_s", None, None, None, ""),
    ("e2e", "e2e.scaled.visibility_p99_s", None, "value <= 5", None,
     "target: p99 under 5 s with Kafka and OpenSearch (issue 9)"),
    ("e2e", "e2e.scaled.probes_lost", None, "value == 0", None, "as above, 45 s grace"),
    ("e2e", "e2e.scaled.cpu_s_per_gb.agent", None, None, None, "CPU-seconds per raw GB, from /proc"),
    ("e2e", "e2e.scaled.cpu_s_per_gb.collector", None, None, None, ""),
    ("e2e", "e2e.scaled.cpu_s_per_gb.indexer", None, None, None, ""),
    ("e2e", "e2e.scaled.rss_mb.agent", None, None, None, "peak RSS (VmHWM)"),
    ("e2e", "e2e.scaled.rss_mb.collector", None, None, None, ""),
    ("e2e", "e2e.scaled.rss_mb.indexer", None, None, None, ""),
    ("e2e", "e2e.scaled.rss_mb.queryd", None, None, None, "serving the probe searches"),

    ("archive", "archive.parquet.size_ratio", "baseline.zstd3_file.size_ratio", "value <= 0.1", None,
     "archive bytes per raw byte, Parquet + zstd; target: the seed's 5-10x reduction (004)"),
    ("archive", "archive.ndjson.size_ratio", "baseline.zstd3_file.size_ratio", None, None,
     "archive bytes per raw byte, NDJSON + zstd"),
]

SECTIONS = [
    ("limits", "1. Physical limits of this machine", "limits"),
    ("agent", "2a. Agent", "agent"),
    ("collector", "2b. Collector (spool and Kafka)", "collector"),
    ("indexer", "2c. Indexer stages: parse+grok+mask, OpenSearch sink, archive writer", "stages"),
    ("store", "2d. Embedded store: ingest, size, queries", "stages"),
    ("opensearch", "2e. OpenSearch: indexing cost, size and the store's queries", "opensearch"),
    ("e2e", "3-4. End to end", "e2e"),
    ("archive", "5. Archive", "stages"),
]
# The benchmark script that produces each figure prefix (for "not run" / "failed").
PRODUCER = {
    "limits": "limits", "agent": "agent", "collector": "collector", "indexer.parse": "stages",
    "indexer.opensearch": "opensearch", "indexer.archive": "stages", "store": "stages",
    "opensearch": "opensearch", "e2e": "e2e", "archive": "stages", "queryd": "stages", "baseline.opensearch": "opensearch",
    "baseline.zstd19_file": "stages", "baseline.xz9_file": "stages",
}


def producer(name):
    best = ""
    for p in PRODUCER:
        if name.startswith(p) and len(p) > len(best):
            best = p
    return PRODUCER.get(best)


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"report: bad line in samples: {line[:120]}", file=sys.stderr)
    return recs


def target_ok(expr, value, ratio):
    if expr is None or value is None:
        return None
    if "ratio" in expr and ratio is None:
        return None
    return bool(eval(expr, {"__builtins__": {}}, {"value": value, "ratio": ratio}))


def fmt(v, unit=""):
    if v is None:
        return "—"
    a = abs(v)
    if a == 0:
        s = "0"
    elif a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3g}"
    return s


def gnuplot(script):
    try:
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, timeout=60)
        if r.returncode != 0:
            print("report: gnuplot: " + r.stderr.strip()[:500], file=sys.stderr)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"report: gnuplot: {e}", file=sys.stderr)
        return False


def plot_throughput(series, path, title):
    """series: list of (datafile, label); each file '<seconds> <MB/s>' lines."""
    lines = [f"'{f}' using 1:2 with lines lw 2 title '{t}'" for f, t in series]
    return gnuplot(f"""set terminal pngcairo size 900,380 font 'sans,10' noenhanced
set output '{path}'
set title '{title}'
set xlabel 'seconds'
set ylabel 'MB/s'
set grid
set key top right
set yrange [0:*]
plot {', '.join(lines)}
""")


def plot_cdf(groups, path, title, xlabel):
    """groups: {label: [values]}; draws each as an empirical CDF, log x."""
    tmpdir = os.path.dirname(path)
    parts = []
    for i, (label, vals) in enumerate(sorted(groups.items())):
        vals = sorted(v for v in vals if v > 0)
        if not vals:
            continue
        f = os.path.join(tmpdir, f".cdf-{os.path.basename(path)}-{i}.dat")
        with open(f, "w") as o:
            for k, v in enumerate(vals):
                o.write(f"{v} {(k + 1) / len(vals)}\n")
        parts.append(f"'{f}' using 1:2 with steps lw 2 title '{label} (n={len(vals)})'")
    if not parts:
        return False
    ok = gnuplot(f"""set terminal pngcairo size 900,380 font 'sans,10' noenhanced
set output '{path}'
set title '{title}'
set xlabel '{xlabel} (log scale)'
set ylabel 'fraction of queries'
set logscale x
set grid
set key bottom right
set yrange [0:1]
plot {', '.join(parts)}
""")
    for i in range(len(groups)):
        try:
            os.unlink(os.path.join(tmpdir, f".cdf-{os.path.basename(path)}-{i}.dat"))
        except OSError:
            pass
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--load-end", default="")
    ap.add_argument("--seconds", type=int, default=0)
    a = ap.parse_args()

    recs = load(os.path.join(a.out, "samples.jsonl"))
    machine = json.load(open(os.path.join(a.out, "machine.json")))
    machine["load_avg_end"] = a.load_end
    machine["seconds"] = a.seconds

    samples, units, skips, notes, plots = {}, {}, {}, {}, []
    failed, not_run, secs = set(), set(), {}
    for r in recs:
        b = r.get("bench", "")
        if "name" in r and "value" in r:
            samples.setdefault(r["name"], []).append(r["value"])
            units[r["name"]] = r.get("unit", "")
        elif "skip" in r:
            skips[r["skip"]] = r["reason"]
        elif "note" in r:
            notes.setdefault(b, []).append(r["note"])
        elif "plot" in r:
            plots.append(r)
        elif r.get("failed"):
            failed.add(b)
        elif r.get("not_run"):
            not_run.add(b)
        elif "seconds" in r:
            secs[b] = r["seconds"]

    def stat(name):
        v = samples.get(name)
        if not v:
            return None
        return {"value": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}

    figures = []
    for section, name, base, target, bound, why in FIGURES:
        s = stat(name)
        fig = {"name": name, "value": None, "unit": units.get(name), "min": None, "max": None,
               "runs": 0, "baseline": None, "ratio": None, "target": target, "meets_target": None,
               "bound_by": None, "section": section, "why": why}
        if base:
            bs = stat(base)
            fig["baseline"] = {"name": base, "value": bs["value"] if bs else None,
                               "unit": units.get(base)}
        if s:
            fig.update(value=s["value"], min=s["min"], max=s["max"], runs=s["n"])
            bv = fig["baseline"]["value"] if fig["baseline"] else None
            if bv:
                fig["ratio"] = s["value"] / bv
            if bound:
                ls = stat(bound)
                if ls and ls["value"]:
                    fig["bound_by"] = {"name": bound, "value": ls["value"],
                                       "fraction": s["value"] / ls["value"]}
            fig["meets_target"] = target_ok(target, fig["value"], fig["ratio"])
        else:
            prod = producer(name)
            if name in skips:
                fig["skipped"] = skips[name]
            elif prod in not_run:
                fig["skipped"] = f"not run (bench/run --only without {prod})"
            elif prod in failed:
                fig["skipped"] = f"the {prod} benchmark failed in this run (see its log)"
            else:
                fig["skipped"] = "not measured in this run"
        figures.append(fig)
    # Skips named with a wildcard prefix ("e2e.embedded.*") apply to every match.
    for k, reason in skips.items():
        if k.endswith("*"):
            for fig in figures:
                if fig["value"] is None and fig["name"].startswith(k[:-1]):
                    fig["skipped"] = reason

    os.makedirs(a.results, exist_ok=True)
    for f in os.listdir(a.results):   # the plots of the previous run (ours only)
        if f.endswith(".png") and f.startswith(("series-", "latency-")):
            os.unlink(os.path.join(a.results, f))

    # Plots: one PNG per throughput series, latency CDFs from latency files.
    section_plots = {}
    for p in plots:
        src = os.path.join(a.out, p["file"])
        if not os.path.exists(src) or os.path.getsize(src) == 0:
            continue
        png = os.path.splitext(p["file"])[0] + ".png"
        dst = os.path.join(a.results, png)
        ok = False
        if p["plot"] == "throughput":
            ok = plot_throughput([(src, p["bench"])], dst, p["title"])
        elif p["plot"] == "latency":
            groups = {}
            for line in open(src):
                parts = line.split()
                if len(parts) == 2:
                    groups.setdefault(parts[0], []).append(float(parts[1]))
            unit = "seconds" if "visibility" in p["file"] else "milliseconds"
            ok = plot_cdf(groups, dst, p["title"], unit)
        if ok:
            section_plots.setdefault(p["bench"], []).append((png, p["title"]))

    clean = [{k: v for k, v in f.items() if k not in ("section",)} for f in figures]
    with open(os.path.join(a.results, "latest.json"), "w") as f:
        json.dump(clean, f, indent=1)
        f.write("\n")
    meta = dict(machine)
    meta["benchmarks"] = {b: {"seconds": secs.get(b), "failed": b in failed, "not_run": b in not_run}
                          for b in sorted(set(secs) | failed | not_run)}
    with open(os.path.join(a.results, "latest.meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.results, "history.jsonl"), "a") as f:
        f.write(json.dumps({"date": machine.get("date"), "commit": machine.get("commit"),
                            "mode": machine.get("mode"),
                            "figures": {x["name"]: x["value"] for x in figures
                                        if x["value"] is not None}}) + "\n")

    # latest.md
    m = machine
    md = ["# loghaul benchmark results", "",
          f"`bench/run{' --quick' if m.get('mode') == 'quick' else ''}` on {m.get('date')}, "
          f"commit {m.get('commit')} ({m.get('branch')}), {m.get('runs')} runs per figure "
          f"(median, min–max), {m.get('data_size')} of generated logs (seed {m.get('seed')}), "
          f"{a.seconds} s in all.", "",
          "| machine | |", "|---|---|",
          f"| cores | {m.get('cores')} ({m.get('virtualization') or 'bare metal'}) |",
          f"| CPU | {m.get('cpu_model')} |",
          f"| memory | {m.get('memory_gib')} GiB |",
          f"| kernel | {m.get('kernel')} ({m.get('os')}) |",
          f"| disk | {m.get('disk')} |",
          f"| load average (1/5/15 min) | {m.get('load_avg_start')} at start, {a.load_end} at the end |",
          "",
          "The machine is shared: other work was running during the run (see the load average), so "
          "wall-clock figures are noisy; per-core figures divide by the CPU seconds the OS charged to "
          "the process measured (`/proc/<pid>/stat`, `getrusage`), which other load disturbs much less. "
          "`ratio` = value / baseline (both measured in this run); `of limit` = value / the physical "
          "limit it is bound by (section 1, same run). Figure definitions and targets: "
          "`bench/report.py`; how each is measured: `bench/bench_*.sh`. Capacity model: "
          "[docs/capacity.md](../../docs/capacity.md).", ""]
    timed = set()
    by_section = {}
    for fig in figures:
        by_section.setdefault(fig["section"], []).append(fig)
    for sec, title, bench in SECTIONS:
        figs = by_section.get(sec, [])
        md += [f"## {title}", ""]
        if bench in secs and bench not in timed:
            timed.add(bench)
            md += [f"_{secs[bench]} s for the `{bench}` benchmark_" +
                   (" — **FAILED**" if bench in failed else ""), ""]
        md += ["| figure | value | min–max | unit | baseline (same run) | ratio | target | meets | of limit |",
               "|---|---|---|---|---|---|---|---|---|"]
        for f in figs:
            if f["value"] is None:
                md.append(f"| `{f['name']}` | — | | | | | {f['target'] or ''} | | "
                          f"skipped: {f.get('skipped', '')} |")
                continue
            b = f["baseline"]
            btxt = ""
            if b:
                btxt = f"`{b['name']}` {fmt(b['value'])}" if b["value"] is not None else f"`{b['name']}` —"
            meets = {True: "yes", False: "**no**", None: ""}[f["meets_target"]]
            lim = ""
            if f["bound_by"]:
                lim = f"{100 * f['bound_by']['fraction']:.0f}% of `{f['bound_by']['name']}`"
            rng = f"{fmt(f['min'])}–{fmt(f['max'])}" if f["runs"] > 1 else ""
            md.append(f"| `{f['name']}` | **{fmt(f['value'])}** | {rng} | {f['unit'] or ''} | {btxt} | "
                      f"{fmt(f['ratio']) if f['ratio'] is not None else ''} | {f['target'] or ''} | "
                      f"{meets} | {lim} |")
        md.append("")
        whys = [f"- `{f['name']}`: {f['why']}" for f in figs if f["why"]]
        if whys:
            md += ["<details><summary>what each figure is</summary>", ""] + whys + ["", "</details>", ""]
        for n in notes.get(bench, []) if sec in ("limits", "agent", "collector", "store", "opensearch", "e2e") else []:
            md.append(f"- {n}")
        if notes.get(bench) and sec in ("limits", "agent", "collector", "store", "opensearch", "e2e"):
            md.append("")
        if sec in ("limits", "agent", "collector", "store", "opensearch", "e2e"):
            for png, t in section_plots.get(bench, []):
                md += [f"![{t}]({png})", ""]
    with open(os.path.join(a.results, "latest.md"), "w") as f:
        f.write("\n".join(md))
    n_meas = sum(1 for f in figures if f["value"] is not None)
    print(f"report: {n_meas} of {len(figures)} figures measured, "
          f"{sum(1 for f in figures if f['meets_target'] is False)} below target", file=sys.stderr)


if __name__ == "__main__":
    main()
