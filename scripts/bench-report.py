#!/usr/bin/env python3
"""The table and the JSON file of one benchmark script (bench-lib.sh's `bench_report`).

    python3 scripts/bench-report.py RUNS JSON TXT META ROW...

RUNS   the runs `bench_record` wrote, one per line, tab-separated:
       NAME RUN WALL_S CPU_S MAX_RSS_KIB PEAK_RSS_ANON_KIB BYTES   (BYTES "-" when no output)
JSON   the JSON file to write (every run's figures, the medians, the peaks, the ratios)
TXT    the same table as text, beside it
META   a JSON object: "title" (first line), "notes" (lines under it), anything else is copied
       into the JSON file as it is (the database, the settings, extra results)
ROW    NAME=LABEL=BASELINE, in table order; BASELINE is the NAME of the row the ratios are
       taken against, or empty (a baseline's own row)

For each row: the medians of wall seconds, CPU seconds and output bytes over its runs; the
peaks of max RSS and RssAnon (the highest of all runs: a peak is a peak); and, against its
baseline's medians, ratio = wall / baseline wall, cpu_ratio = CPU / baseline CPU, and
bytes_ratio = bytes / baseline bytes when both have output.
Prints the table, then one `bench:` line per row, and the JSON path last.
"""
import json
import statistics
import sys


def number(text, kind):
    return None if text == "-" else kind(text)


def main(argv):
    if len(argv) < 6:
        sys.stderr.write("usage: bench-report.py RUNS JSON TXT META ROW...\n")
        return 2
    runs_path, json_path, txt_path, meta_json = argv[1:5]
    meta = json.loads(meta_json)
    rows = []
    for spec in argv[5:]:
        name, rest = spec.split("=", 1)
        label, baseline = rest.rsplit("=", 1)  # the label may hold "="; names do not
        rows.append({"name": name, "label": label, "baseline": baseline or None, "runs": []})
    by_name = {row["name"]: row for row in rows}
    with open(runs_path) as f:
        for line in f:
            name, run, wall, cpu, rss, anon, out = line.rstrip("\n").split("\t")
            if name not in by_name:
                continue
            by_name[name]["runs"].append({
                "run": int(run), "wall_s": float(wall), "cpu_s": float(cpu), "max_rss_kib": int(rss),
                "peak_rss_anon_kib": int(anon), "bytes": number(out, int)})
    for row in rows:
        runs = row["runs"]
        if not runs:
            sys.stderr.write(f"bench-report.py: no runs for {row['name']}\n")
            return 1
        outputs = [r["bytes"] for r in runs if r["bytes"] is not None]
        row["median"] = {
            "wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "bytes": int(statistics.median(outputs)) if outputs else None,
        }
        row["peak"] = {
            "max_rss_kib": max(r["max_rss_kib"] for r in runs),
            "peak_rss_anon_kib": max(r["peak_rss_anon_kib"] for r in runs),
        }
    for row in rows:
        base = by_name.get(row["baseline"]) if row["baseline"] else None
        if row["baseline"] and base is None:
            sys.stderr.write(f"bench-report.py: {row['name']}: no baseline row {row['baseline']}\n")
            return 1

        def ratio(key):
            if base is None or row["median"][key] is None or not base["median"][key]:
                return None
            return round(row["median"][key] / base["median"][key], 3)
        row["ratio"] = {"wall": ratio("wall_s"), "cpu": ratio("cpu_s"), "bytes": ratio("bytes")}

    def show(value, fmt):
        return "-" if value is None else fmt.format(value)

    width = max(len("row"), *(len(row["label"]) for row in rows))
    head = f"{'row':<{width}} {'wall_s':>8} {'cpu_s':>8} {'rss_kib':>9} {'anon_kib':>9} {'bytes':>12} {'ratio':>6} {'cpu_r':>6} {'bytes_r':>7}   wall per run"
    lines = [meta.get("title", ""), *meta.get("notes", []), "", head]
    for row in rows:
        m, p, r = row["median"], row["peak"], row["ratio"]
        per_run = " ".join(f"{x['wall_s']:.2f}" for x in row["runs"])
        lines.append(
            f"{row['label']:<{width}} {m['wall_s']:>8.2f} {m['cpu_s']:>8.2f} {p['max_rss_kib']:>9} "
            f"{p['peak_rss_anon_kib']:>9} {show(m['bytes'], '{}'):>12} {show(r['wall'], '{:.2f}'):>6} "
            f"{show(r['cpu'], '{:.2f}'):>6} {show(r['bytes'], '{:.3f}'):>7}   {per_run}")
    lines.append("")
    for row in rows:
        m, p, r = row["median"], row["peak"], row["ratio"]
        lines.append(
            f"bench: name={row['name']} seconds={m['wall_s']:.2f} cpu_seconds={m['cpu_s']:.2f} "
            f"peak_rss_kib={p['max_rss_kib']} peak_rss_anon_kib={p['peak_rss_anon_kib']} "
            f"bytes={show(m['bytes'], '{}')} ratio={show(r['wall'], '{:.2f}')} "
            f"cpu_ratio={show(r['cpu'], '{:.2f}')} bytes_ratio={show(r['bytes'], '{:.3f}')}"
            f"{'' if row['baseline'] is None else ' baseline=' + row['baseline']}")
    text = "\n".join(lines) + "\n"
    document = dict(meta)
    document["columns"] = {
        "wall_s": "median wall seconds", "cpu_s": "median user+system seconds of the process tree (wait4)",
        "max_rss_kib": "highest ru_maxrss of all runs (largest single process)",
        "peak_rss_anon_kib": "highest RssAnon of all runs, summed over the process tree, sampled every ~10 ms",
        "bytes": "median output bytes", "ratio": "median over the baseline row's median (wall, cpu, bytes)"}
    document["rows"] = rows
    with open(json_path, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    with open(txt_path, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    sys.stdout.write(f"bench: json={json_path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
