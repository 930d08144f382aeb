#!/usr/bin/env bash
# Issue 13's recovery table, measured: the damage corpus of SalvageCorpusTests (DamageCorpus.swift)
# over 5 seeds at a larger size, one `abathur-integrity --recover OUT DAMAGED --backup-dir DIR
# --json` per variant and seed, each compared row by row (by rowid) with the undamaged original.
#
#   bash scripts/salvage-table.sh [BIN_DIR] [ROWS]
#
# BIN_DIR holds abathur-tools and abathur-demo (default .build-test/release); the tests run from
# the test build, so `make test-build` first. ROWS: abathur-demo create --rows (default 20000,
# ~30 MB, ~108,000 rows in 11 tables). SEEDS (environment, default 1,2,3,4,5).
#
# Columns, per variant (means over the seeds):
#   issue       the issue's minimum in-table recovery (or the reference it names)
#   in-table    original rows back in their own table / all original rows (mean, then min)
#   intact      rows whose cell bytes the damage left untouched: the most any salvage can get
#   sqlite      what SQLite itself recovers from the same files (WAL variants only)
#   invented    rows whose rowid does not exist in their table in the original (must be 0)
#   flagged/altered   rows reported altered in --json / rows whose values differ (summed)
#   l&f         rows in lost_and_found (summed)
#   exits       the exit codes seen
# (The live-database form's run, --db instead of PATH, is checked by the tests but not in the table.)
# Then the test failures (each assertion the tool did not meet), as `swift test` printed them.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${1:-.build-test/release}" && pwd)
ROWS=${2:-20000}
SEEDS=${SEEDS:-1,2,3,4,5}
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
[ -x "$BIN/abathur-tools" ] && [ -x "$BIN/abathur-demo" ] || { echo "no abathur-tools/abathur-demo in $BIN" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "salvage corpus: rows=$ROWS seeds=$SEEDS bin=$BIN" >&2
ABATHUR_TEST_BIN=$BIN ABATHUR_CORPUS_SEEDS=$SEEDS ABATHUR_CORPUS_ROWS=$ROWS ABATHUR_CORPUS_REPORT=$work/report.jsonl \
  "$SWIFT" test -c release --scratch-path .build-test --skip-build --parallel --filter SalvageCorpusTests \
  >"$work/test.log" 2>&1
status=$?
[ -s "$work/report.jsonl" ] || { echo "no results; swift test said:" >&2; tail -30 "$work/test.log" >&2; exit 1; }
python3 - "$work/report.jsonl" <<'EOF'
import json, sys
from collections import OrderedDict
issue = OrderedDict([
    ("one table leaf page zeroed", ">= 99.5%"), ("random bytes over a table leaf page", ">= 99.4%"),
    ("32 scattered bit flips", "100%"), ("truncated to 90%", ">= 96%"), ("truncated to 50%", ">= 81%"),
    ("one table interior page zeroed", ">= 95%"), ("page 1 zeroed", ">= 95%"),
    ("a WAL from another database generation", ">= 99%"), ("a zeroed index leaf", "100%"),
    ("two swapped pages", "100%"), ("a damaged header magic", "100%"), ("a damaged page size field", "100%"),
    ("zeroed 512-byte sectors", ">= 99.7%"), ("text written over part of a page", ">= 99.5%"),
    ("a freelist trunk pointing at a live page", "(100%)"), ("a torn WAL tail", ">= SQLite"),
    ("a bit flip in a middle WAL frame", ">= SQLite"),
])
runs = [r for r in (json.loads(l) for l in open(sys.argv[1]) if l.strip()) if r.get("form", "path") == "path"]
by = OrderedDict((v, []) for v in issue)
for r in runs:
    by.setdefault(r["variant"], []).append(r)
pct = lambda x: "%.2f%%" % (100 * x)
print("| damage | issue | in-table (mean) | min | intact | sqlite | invented | flagged/altered | l&f | exits | s (mean) | seeds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for v, rs in by.items():
    if not rs:
        print("| %s | %s | (no run) |||||||||" % (v, issue.get(v, "")))
        continue
    n = len(rs)
    own = [r["sqlite_own"] for r in rs if r.get("sqlite_own") is not None]
    print("| %s | %s | %s | %s | %s | %s | %d | %d/%d | %d | %s | %.2f | %s |" % (
        v, issue.get(v, ""), pct(sum(r["in_table"] for r in rs) / n), pct(min(r["in_table"] for r in rs)),
        pct(sum(r["intact"] for r in rs) / n), pct(sum(own) / len(own)) if own else "",
        sum(r["invented"] for r in rs), sum(r["flagged"] for r in rs), sum(r["altered"] for r in rs),
        sum(r["lost_and_found"] for r in rs), ",".join(sorted(set(str(r["exit"]) for r in rs))),
        sum(r["seconds"] for r in rs) / n, ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"]))))
print()
print("rows per database: %s" % sorted(set(r["original"] for r in runs)))
EOF
echo
if [ $status -ne 0 ]; then
  echo "failed assertions (swift test exit $status):"
  grep -E 'error:' "$work/test.log" | sed -E 's/^.*SalvageCorpusTests\.swift:[0-9]+: error: //' | cut -c1-1200
else
  echo "every assertion held"
fi
