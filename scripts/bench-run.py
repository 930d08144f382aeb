#!/usr/bin/env python3
"""Runs one command and measures it, for the benchmarks (bench-lib.sh's `timed`).

    python3 scripts/bench-run.py STATS OUT ERR -- CMD...

CMD runs with stdout to OUT and stderr to ERR (OUT = ERR: one file, both streams), stdin
/dev/null. When it ends, STATS gets one line:

    WALL CPU MAX_RSS_KIB PEAK_RSS_ANON_KIB SAMPLES EXIT

- WALL: seconds from just before the fork to the end of wait4, time.monotonic().
- CPU: user + system seconds of CMD and every descendant it waited for, from the rusage
  wait4(2) returns for CMD (Linux adds a reaped child's usage to its parent's).
- MAX_RSS_KIB: ru_maxrss of the same rusage: the peak resident set of the largest single
  process in the tree (what /usr/bin/time's %M reports), file-backed and mapped pages
  included.
- PEAK_RSS_ANON_KIB: every ~10 ms, RssAnon from /proc/PID/status summed over CMD and its
  live descendants; the largest sum seen. Anonymous memory only: a memory-mapped file's
  pages are page cache and do not count. A process that lives less than one period can be
  missed.
- SAMPLES: how many samples were taken (0 means the command ended before the first).
- EXIT: CMD's exit status, or 128 + the signal that ended it.

The runner exits with EXIT, or 125 when it could not run CMD (then STATS is not written).
"""
import os
import signal
import sys
import time

PERIOD = 0.010


def ppid_of(pid):
    """The parent of pid from /proc/PID/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm can hold spaces and parentheses, so split after the last ')'.
    return int(stat[stat.rindex(b")") + 2:].split(b" ", 2)[1])


def rss_anon_kib(pid):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (no RssAnon line)


class Tree:
    """CMD's process tree. Each sample lists /proc and reads the parent of each pid not seen
    before, so a sample costs one listdir and one status read per process of the tree."""

    def __init__(self, root):
        self.root = root
        self.seen = {}  # pid -> in the tree (True) or not (False)

    def members(self):
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
        live = set(pids)
        for pid in list(self.seen):
            if pid not in live:
                del self.seen[pid]  # gone: the number may come back as another process
        self.seen[self.root] = True
        # New pids in increasing order, so a parent is usually classified before its children;
        # a second pass catches the rest (a parent with the higher number after a wrap).
        pending = sorted(p for p in pids if p not in self.seen)
        for _ in range(2):
            later = []
            for pid in pending:
                parent = ppid_of(pid)
                if parent is None:
                    continue
                if parent in self.seen:
                    self.seen[pid] = self.seen[parent]
                else:
                    later.append((pid, parent))
            pending = [pid for pid, _ in later]
        for pid in pending:
            self.seen[pid] = False
        return [pid for pid, inside in self.seen.items() if inside]


def main(argv):
    if len(argv) < 6 or argv[4] != "--":
        sys.stderr.write("usage: bench-run.py STATS OUT ERR -- CMD...\n")
        return 125
    stats, out, err, cmd = argv[1], argv[2], argv[3], argv[5:]
    try:
        out_fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err_fd = out_fd if err == out else os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
    except OSError as e:
        sys.stderr.write(f"bench-run.py: {e}\n")
        return 125
    # The child tells the parent through a close-on-exec pipe whether exec failed.
    r, w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(null_fd, 0)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            os.set_inheritable(w, False)
            # Python ignores SIGPIPE and SIGXFSZ; the command gets the defaults, as from a shell.
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.execvp(cmd[0], cmd)
        except OSError as e:
            os.write(w, f"{cmd[0]}: {e}".encode())
        os._exit(127)
    os.close(w)
    for fd in {out_fd, err_fd, null_fd}:
        os.close(fd)
    failure = os.read(r, 4096)
    os.close(r)
    if failure:
        os.waitpid(pid, 0)
        sys.stderr.write(f"bench-run.py: cannot run {failure.decode(errors='replace')}\n")
        return 125

    tree = Tree(pid)
    peak_anon = 0
    samples = 0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            break
        total = sum(rss_anon_kib(p) for p in tree.members())
        samples += 1
        peak_anon = max(peak_anon, total)
        # A measurement period, not synchronisation: the loop ends on wait4 above.
        time.sleep(PERIOD)
    wall = time.monotonic() - start

    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    cpu = usage.ru_utime + usage.ru_stime
    with open(stats, "w") as f:
        f.write(f"{wall:.3f} {cpu:.3f} {usage.ru_maxrss} {peak_anon} {samples} {code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
