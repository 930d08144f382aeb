#!/usr/bin/env python3
"""The service's writer, for scripts/bench-writer.sh: small transactions, continuously, and
the latency of each commit.

    python3 scripts/bench-writer.py write DB LATENCIES READY_FIFO RATE
    python3 scripts/bench-writer.py summary LATENCIES WINDOWS JSON TEXT

write: opens DB as the service would (WAL mode, synchronous=NORMAL, foreign_keys=ON,
busy_timeout 5000 ms, SQLite's automatic checkpoint at its default 1000 pages) and commits
one transaction after another, each `BEGIN IMMEDIATE; <one statement>; COMMIT`, the
statement alternating between
    INSERT INTO audit(task_id, agent_id, action, details, created_at) VALUES (?, 'agent-1', 'bench', ?, ?)
    UPDATE state SET value = ?, updated_at = ? WHERE key = 'orchestrator'
at RATE transactions a second (0: as fast as it can; when it falls behind it does not catch
up in a burst). The latency of a transaction is from just before BEGIN IMMEDIATE to COMMIT's
return (time.perf_counter_ns), so waiting for a lock counts. Each is one line of LATENCIES:
"START_UNIX_SECONDS LATENCY_MICROSECONDS". After the first commit it writes "ready" into
READY_FIFO. SIGTERM ends it after the transaction in progress, exit 0; any SQLite error
(SQLITE_BUSY after the timeout included) ends it with the error on stderr, exit 1.

summary: WINDOWS is a file of lines "ROUND KIND START END" (KIND idle or backup, times in
Unix seconds, bash's $EPOCHREALTIME); writes into JSON an object with, per kind, the commits
whose transaction started inside one of its windows: count, p50, p99, max (microseconds,
nearest rank), the same per round, and p99_ratio = backup p99 / idle p99; and into TEXT the
same for people, ending with one `bench: name=writer ...` line. Exit 1 when a window has no
commit (the writer stalled through it).
"""
import json
import math
import signal
import sqlite3
import sys
import time


def write(db_path, latencies_path, ready_fifo, rate):
    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)

    db = sqlite3.connect(db_path, isolation_level=None, timeout=5.0)
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        sys.stderr.write(f"bench-writer.py: journal_mode is {mode}, not wal\n")
        return 1
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    tasks = db.execute("SELECT max(id) FROM tasks").fetchone()[0]
    if not tasks:
        sys.stderr.write("bench-writer.py: no tasks in the database\n")
        return 1
    period = 1.0 / rate if rate > 0 else 0.0
    k = 0
    next_start = time.monotonic()
    with open(latencies_path, "w", buffering=1 << 20) as out:
        while not stop:
            if period:
                delay = next_start - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # the pace of the service, not synchronisation
                next_start = max(next_start + period, time.monotonic())
            wall = time.time()
            t0 = time.perf_counter_ns()
            try:
                db.execute("BEGIN IMMEDIATE")
                now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(wall))
                if k % 2 == 0:
                    db.execute("INSERT INTO audit(task_id, agent_id, action, details, created_at) VALUES (?, 'agent-1', 'bench', ?, ?)",
                               (1 + k % tasks, f"bench commit {k}", now))
                else:
                    db.execute("UPDATE state SET value = ?, updated_at = ? WHERE key = 'orchestrator'", (f"bench {k}", now))
                db.execute("COMMIT")
            except sqlite3.Error as e:
                sys.stderr.write(f"bench-writer.py: transaction {k}: {e}\n")
                return 1
            t1 = time.perf_counter_ns()
            out.write(f"{wall:.6f} {(t1 - t0) // 1000}\n")
            k += 1
            if k == 1:
                with open(ready_fifo, "w") as ready:
                    ready.write("ready\n")
    db.close()
    return 0


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def stats(values):
    values = sorted(values)
    return {"count": len(values), "p50_us": percentile(values, 50), "p99_us": percentile(values, 99),
            "max_us": values[-1] if values else None}


def summary(latencies_path, windows_path, json_path, text_path):
    windows = []
    with open(windows_path) as f:
        for line in f:
            rnd, kind, start, end = line.split()
            windows.append((int(rnd), kind, float(start), float(end)))
    commits = []
    with open(latencies_path) as f:
        for line in f:
            start, latency = line.split()
            commits.append((float(start), int(latency)))
    result = {"kinds": {}, "rounds": []}
    per_kind = {"idle": [], "backup": []}
    for rnd, kind, start, end in windows:
        inside = [lat for t, lat in commits if start <= t < end]
        per_kind[kind].extend(inside)
        result["rounds"].append(dict(round=rnd, kind=kind, seconds=round(end - start, 3), **stats(inside)))
    for kind, values in per_kind.items():
        result["kinds"][kind] = stats(values)
    idle, backup = result["kinds"]["idle"]["p99_us"], result["kinds"]["backup"]["p99_us"]
    result["p99_ratio"] = round(backup / idle, 3) if idle and backup is not None else None
    result["commits_total"] = len(commits)
    with open(json_path, "w") as f:
        json.dump(result, f)

    def ms(us):
        return "-" if us is None else f"{us / 1000:.2f} ms"
    i, b, r = result["kinds"]["idle"], result["kinds"]["backup"], result["p99_ratio"]
    verdict = "met" if r is not None and r <= 2.0 else "NOT met"
    with open(text_path, "w") as f:
        f.write("writer commit latency (BEGIN IMMEDIATE to COMMIT's return), all rounds:\n")
        for what, k in (("no backup:  ", i), ("with backup:", b)):
            f.write(f"  {what} {k['count']:>7} commits, p50 {ms(k['p50_us'])}, p99 {ms(k['p99_us'])}, max {ms(k['max_us'])}\n")
        f.write(f"  p99 ratio (with / without): {'-' if r is None else r} (target <= 2.0: {verdict})\n")
        f.write(f"bench: name=writer idle_p50_us={i['p50_us']} idle_p99_us={i['p99_us']} backup_p50_us={b['p50_us']} "
                f"backup_p99_us={b['p99_us']} p99_ratio={r}\n")
    empty = [f"the {w['kind']} window of round {w['round']}" for w in result["rounds"] if w["count"] == 0]
    if empty:
        sys.stderr.write("bench-writer.py: no commit in " + ", ".join(empty) + "\n")
        return 1
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "write":
        return write(argv[2], argv[3], argv[4], float(argv[5]))
    if len(argv) == 6 and argv[1] == "summary":
        return summary(*argv[2:6])
    sys.stderr.write("usage: bench-writer.py write DB LATENCIES READY_FIFO RATE | summary LATENCIES WINDOWS JSON TEXT\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
