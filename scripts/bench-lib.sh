# shellcheck shell=bash
# Shared by the benchmarks (source it): arguments and settings, the Debian packages they use,
# the database (BENCH_DB or a fresh abathur-demo one), the work directory, and the rule that
# nothing else may hold the database while it is timed.
#
#   bench_init SCRIPT TOOL "$@"       BIN, SIZE_MB, RUNS, TMP_PARENT; ABATHUR_* cleared
#   bench_require PACKAGE...          installs what is missing (time, sqlite3, gzip)
#   bench_database                    DB (empty until created), CREATE_AT, KEEP_DB, DB_BYTES
#   avail_bytes DIR
#   bench_space NEED FOR
#   bench_workdir NAME                WORK (removed at exit), EMPTY_CONF
#   bench_create_database             creates DB when bench_database found none
#   bench_refuse_holders WHY          exits when any process has the database open
#   timed OUT ERR CMD...              runs CMD under scripts/bench-run.py: T_SEC T_CPU T_RSS T_ANON
#                                     (OUT = ERR: one log)
#   bench_record NAME [BYTES]         the last timed run's figures, as a run of row NAME
#   bench_report NAME META ROW...     the table and the JSON file (scripts/bench-report.py):
#                                     REPORT_JSON
#   median FORMAT VALUES...           the median, printf-formatted
#
# What `timed` measures (scripts/bench-run.py says exactly): T_SEC wall seconds; T_CPU user +
# system seconds of the command and every descendant it waited for (wait4's rusage); T_RSS
# ru_maxrss in KiB (the largest single process); T_ANON the peak of RssAnon from
# /proc/PID/status summed over the process tree, sampled every ~10 ms, in KiB.
#
# BENCH_OUT (default build/bench in the repository) receives each script's NAME-SIZEm.json and
# NAME-SIZEm.txt (the table), SIZE the database's size in MiB, rounded; the next run of the
# same script on a database of that size overwrites them.

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

bench_init() {
    local script=$1 tool=$2
    shift 2
    [ $# -eq 1 ] || die "usage: bash $script BIN_DIR"
    [ -d "$1" ] || die "$1: not a directory"
    BIN=$(cd "$1" && pwd)
    for t in "$tool" abathur-demo; do
        [ -x "$BIN/$t" ] || die "$BIN/$t: missing (run make build)"
    done

    SIZE_MB=${BENCH_SIZE_MB:-1024}
    RUNS=${BENCH_RUNS:-3}
    TMP_PARENT=${BENCH_TMP:-/var/tmp}
    BENCH_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    OUT_DIR=${BENCH_OUT:-$BENCH_SCRIPTS/../build/bench}
    [[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MB must be a positive integer, not '$SIZE_MB'"
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, not '$RUNS'"
    [ -d "$TMP_PARENT" ] || die "BENCH_TMP $TMP_PARENT: not a directory"

    bench_require python3 openssl   # bench-run.py, bench-report.py; sha256

    # Settings come only from flags and the empty config file, never from the caller's environment.
    while read -r name; do unset "$name"; done < <(compgen -e | grep '^ABATHUR_' || true)
}

# Packages: time (/usr/bin/time, wall time and peak RSS), sqlite3, gzip.
bench_require() {
    local missing=() package
    for package in "$@"; do
        case $package in
            time) [ -x /usr/bin/time ] || missing+=(time) ;;
            gzip) command -v gzip >/dev/null && command -v gunzip >/dev/null || missing+=(gzip) ;;
            *) command -v "$package" >/dev/null || missing+=("$package") ;;
        esac
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing Debian packages (install them or run as root): ${missing[*]}"
        say "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
}

# The database: reuse BENCH_DB when it exists, else create one (once).
bench_database() {
    DB=""; CREATE_AT=""; KEEP_DB=no
    if [ -n "${BENCH_DB:-}" ]; then
        if [ -e "$BENCH_DB" ]; then
            [ -f "$BENCH_DB" ] || die "BENCH_DB $BENCH_DB: not a regular file"
            DB=$(realpath "$BENCH_DB")
            DB_BYTES=$(stat -c %s "$DB")
            [ "$(head -c 15 "$DB")" = "SQLite format 3" ] || die "$DB: not an SQLite database"
            [ ! -e "$DB-wal" ] || die "$DB has a -wal: a writer is running or crashed; stop it, open and close the database with sqlite3, then rerun"
        else
            CREATE_AT=$(realpath -m "$BENCH_DB"); KEEP_DB=yes
            [ -d "$(dirname "$CREATE_AT")" ] || die "BENCH_DB $BENCH_DB: directory $(dirname "$CREATE_AT") does not exist"
            DB_BYTES=$((SIZE_MB * 1024 * 1024))
        fi
    else
        DB_BYTES=$((SIZE_MB * 1024 * 1024))
    fi
}

avail_bytes() { df -P -B1 "$1" | awk 'NR == 2 { print $4 }'; }

# bench_space NEED FOR   dies unless the temp dir has NEED bytes free, plus the database when it
# is created there, and BENCH_DB's own directory has room for a database created there. FOR
# ends the message: what NEED is for, after "for the N MiB database".
bench_space() {
    local need=$1 for=$2 db_in_tmp=no have
    if [ -z "$DB" ]; then
        if [ -z "$CREATE_AT" ] || [ "$(stat -c %d "$(dirname "$CREATE_AT")")" = "$(stat -c %d "$TMP_PARENT")" ]; then
            db_in_tmp=yes
            need=$((need + DB_BYTES))
        fi
    fi
    have=$(avail_bytes "$TMP_PARENT")
    if [ "$have" -lt "$need" ]; then
        die "not enough free space in $TMP_PARENT: $((have / 1048576)) MiB free, need about $((need / 1048576)) MiB for the $((DB_BYTES / 1048576)) MiB database$([ "$db_in_tmp" = no ] || echo ' (created there)')$for"
    fi
    if [ -n "$CREATE_AT" ] && [ "$db_in_tmp" = no ]; then
        have=$(avail_bytes "$(dirname "$CREATE_AT")")
        [ "$have" -ge "$DB_BYTES" ] || die "not enough free space for BENCH_DB $CREATE_AT: $((have / 1048576)) MiB free, need $((DB_BYTES / 1048576)) MiB"
    fi
}

# The work directory, removed at exit; a database created at BENCH_DB is removed too when
# its creation failed.
cleanup() {  # cleanup [STATUS]   (default: $?)
    local rc=${1:-$?}
    [ -z "${WORK:-}" ] || rm -rf "$WORK"
    if [ -n "${CREATE_AT:-}" ] && [ "$rc" -ne 0 ] && [ "${CREATED_OK:-no}" != yes ]; then
        rm -f "$CREATE_AT" "$CREATE_AT-wal" "$CREATE_AT-shm"
    fi
    exit "$rc"
}

bench_workdir() {
    WORK=$(mktemp -d "$TMP_PARENT/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    EMPTY_CONF="$WORK/empty.conf"
    : > "$EMPTY_CONF"
    : > "$WORK/runs.tsv"
}

bench_create_database() {
    if [ -z "$DB" ]; then
        DB=${CREATE_AT:-$WORK/abathur.db}
        say "creating a ${SIZE_MB} MiB abathur-shaped database at $DB"
        /usr/bin/time -f '%e %M' -o "$WORK/create.time" "$BIN/abathur-demo" create "$DB" --size-mb "$SIZE_MB" >"$WORK/create.log" 2>&1 \
            || { cat "$WORK/create.log" >&2; die "abathur-demo create failed"; }
        CREATED_OK=yes
        say "$(cat "$WORK/create.log") (created in $(cut -d' ' -f1 "$WORK/create.time")s)"
        if [ "$KEEP_DB" = yes ]; then say "keeping $DB for reuse (BENCH_DB)"; fi
        DB_BYTES=$(stat -c %s "$DB")
    fi
}

# Nothing may hold the database: no writer, no reader, no leftover -wal.
bench_refuse_holders() {
    local pids fd target
    pids=$(for fd in /proc/[0-9]*/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        case "$target" in
            "$DB" | "$DB-wal" | "$DB-shm") echo "${fd#/proc/}" | cut -d/ -f1 ;;
        esac
    done | sort -u | tr '\n' ' ')
    [ -z "$pids" ] || die "$DB is open in process(es) $pids; $1"
    [ ! -e "$DB-wal" ] || die "$DB-wal exists after creation; something is writing the database"
}

# Every timed command runs under scripts/bench-run.py, which writes its figures to $WORK/t.
timed() {  # timed OUT ERR CMD...   -> sets T_SEC T_CPU T_RSS T_ANON; returns the command's status
    local out=$1 err=$2 rc=0 samples status; shift 2
    rm -f "$WORK/t"
    python3 "$BENCH_SCRIPTS/bench-run.py" "$WORK/t" "$out" "$err" -- "$@" || rc=$?
    [ -s "$WORK/t" ] || die "bench-run.py could not run: $*"
    read -r T_SEC T_CPU T_RSS T_ANON samples status < "$WORK/t"
    [ "$status" = "$rc" ] || die "bench-run.py exited $rc, but recorded exit $status for: $*"
    [ "$samples" -gt 0 ] || [ "$(awk -v t="$T_SEC" 'BEGIN { print (t < 0.05) }')" = 1 ] \
        || die "bench-run.py took no RssAnon sample in ${T_SEC}s: $*"
    return "$rc"
}

# bench_record NAME [BYTES]   appends the last timed run to $WORK/runs.tsv as the next run of
# row NAME (BYTES: the size of what it wrote, if it writes something).
bench_record() {
    local name=$1 bytes=${2:--} run
    run=$(awk -F'\t' -v n="$name" '$1 == n { k++ } END { print k + 1 }' "$WORK/runs.tsv")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$run" "$T_SEC" "$T_CPU" "$T_RSS" "$T_ANON" "$bytes" >> "$WORK/runs.tsv"
}

# bench_report NAME META ROW...   the table on stdout and OUT_DIR/NAME-SIZEm.{json,txt} (SIZE:
# the database's MiB, rounded); META is a JSON object (title, notes, anything else to keep),
# each ROW is NAME=LABEL=BASELINE. REPORT_JSON: the JSON file's path.
# shellcheck disable=SC2034   # REPORT_JSON is the caller's
bench_report() {
    local name=$1 meta=$2 base; shift 2
    mkdir -p "$OUT_DIR"
    base="$(cd "$OUT_DIR" && pwd)/$name-$(( (DB_BYTES + 524288) / 1048576 ))m"
    REPORT_JSON="$base.json"
    python3 "$BENCH_SCRIPTS/bench-report.py" "$WORK/runs.tsv" "$base.json" "$base.txt" "$meta" "$@" \
        || die "bench-report.py failed"
}

json_list() {  # json_list STRING...   -> a JSON list of the strings
    python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"
}

# json_meta KEY VALUE ...   a JSON object from pairs; a VALUE starting with '@json:' is taken
# as JSON (a number, a list, an object), any other as a string.
json_meta() {
    python3 -c 'import json, sys
a = sys.argv[1:]
d = {}
for k, v in zip(a[0::2], a[1::2]):
    d[k] = json.loads(v[6:]) if v.startswith("@json:") else v
print(json.dumps(d))' "$@"
}

median() {  # median FORMAT VALUES...
    local fmt=$1; shift
    printf '%s\n' "$@" | sort -g | awk -v fmt="$fmt" '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf fmt "\n", m }'
}

# bench_medians NAME...   -> MSEC[NAME] and MRSS[NAME]: the medians of SEC[NAME] and RSS[NAME]
bench_medians() {
    declare -gA MSEC MRSS
    local n
    for n in "$@"; do
        # shellcheck disable=SC2086
        MSEC[$n]=$(median '%.2f' ${SEC[$n]})
        # shellcheck disable=SC2086
        MRSS[$n]=$(median '%d' ${RSS[$n]})
    done
}

# bench_table WIDTH BASELINE NAME...   the rows NAME... (LABEL[NAME]) with their median seconds,
# peak RSS and ratio to BASELINE's seconds, then one `bench:` line each.
bench_table() {
    local width=$1 baseline=$2 n fmt; shift 2
    ratio() { awk -v a="$1" -v b="${MSEC[$baseline]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
    fmt="%-${width}s %9s %13s %7s   %s\n"
    # shellcheck disable=SC2059
    printf "$fmt" "row" "seconds" "peak_rss_kib" "ratio" "seconds per run"
    for n in "$@"; do
        # shellcheck disable=SC2059
        printf "$fmt" "${LABEL[$n]}" "${MSEC[$n]}" "${MRSS[$n]}" "$(ratio "${MSEC[$n]}")" "${SEC[$n]% }"
    done
    echo
    for n in "$@"; do
        echo "bench: name=$n seconds=${MSEC[$n]} peak_rss_kib=${MRSS[$n]} ratio=$(ratio "${MSEC[$n]}")"
    done
}

# bench_codec_zstd   -> ZSTD=yes when abathur-backup offers --compress (as a word, in its
# --help or take --help: --compression-level is not it), and zstd is installed; else ZSTD=no.
# shellcheck disable=SC2034   # ZSTD is the caller's
bench_codec_zstd() {
    local help
    ZSTD=no
    # Read whole before grep -q: with pipefail, grep quitting early would fail the pipe.
    help=$({ "$BIN/abathur-backup" --help; "$BIN/abathur-backup" take --help; } 2>/dev/null || true)
    if grep -qE -- '--compress([^-[:alnum:]]|$)' <<< "$help"; then
        ZSTD=yes
        bench_require zstd
    fi
}

# bench_take_backup DIR [FLAGS...]   one backup of DB into DIR, untimed (abathur-backup prints
# the path it wrote on its last line of stdout): B_FILE (DIR/NAME), B_NAME, B_MANIFEST,
# B_SHA (the manifest's database.sha256), B_BYTES (database.bytes), B_FILE_BYTES.
# shellcheck disable=SC2034   # B_* are the caller's
# bench_take_backups DIR   one gzip backup (GZ NAME WANT_SHA GZ_BYTES RESTORED_BYTES) and, when
# ZSTD=yes, one --compress zstd backup of the same database (ZST ZST_NAME ZST_BYTES; empty
# otherwise), which must hold the same database.
bench_take_backups() {
    local dir=$1
    bench_take_backup "$dir"
    GZ=$B_FILE NAME=$B_NAME WANT_SHA=$B_SHA GZ_BYTES=$B_FILE_BYTES RESTORED_BYTES=$B_BYTES
    case $NAME in *.db.gz) ;; *) die "abathur-backup wrote $NAME, not a .db.gz, without --compress" ;; esac
    ZST="" ZST_NAME="" ZST_BYTES=""
    if [ "$ZSTD" = yes ]; then
        bench_take_backup "$dir" --compress zstd
        ZST=$B_FILE ZST_NAME=$B_NAME ZST_BYTES=$B_FILE_BYTES
        case $ZST_NAME in *.db.zst) ;; *) die "abathur-backup --compress zstd wrote $ZST_NAME, not a .db.zst" ;; esac
        [ "$B_SHA" = "$WANT_SHA" ] || die "the zstd backup's database.sha256 $B_SHA differs from the gzip one's $WANT_SHA (the same database, nothing writing)"
    fi
}

bench_take_backup() {
    local dir=$1 printed; shift
    say "taking a backup (untimed): abathur-backup --db $DB --backup-dir $dir --config EMPTY_CONF${*:+ $*}"
    if ! "$BIN/abathur-backup" --db "$DB" --backup-dir "$dir" --config "$EMPTY_CONF" "$@" >"$WORK/backup.out" 2>"$WORK/backup.err"; then
        cat "$WORK/backup.out" "$WORK/backup.err" >&2
        die "abathur-backup --db $DB --backup-dir $dir --config $EMPTY_CONF $* failed"
    fi
    [ ! -e "$DB-wal" ] || die "$DB-wal appeared during the backup; something else is writing the database"
    printed=$(tail -n 1 "$WORK/backup.out")
    B_NAME=$(basename "$printed")
    B_FILE="$dir/$B_NAME"
    B_MANIFEST="$B_FILE.json"
    case $B_NAME in *.db.gz | *.db.zst) ;; *) cat "$WORK/backup.out" >&2; die "abathur-backup printed '$printed', not a .db.gz or .db.zst" ;; esac
    [ -f "$B_FILE" ] || die "abathur-backup printed $printed, but $B_FILE does not exist"
    [ -f "$B_MANIFEST" ] || die "no manifest $B_MANIFEST"
    B_SHA=$(manifest_value "$B_MANIFEST" database sha256) || die "$B_MANIFEST: no database.sha256"
    B_BYTES=$(manifest_value "$B_MANIFEST" database bytes) || die "$B_MANIFEST: no database.bytes"
    [[ $B_SHA =~ ^[0-9a-f]{64}$ ]] || die "$B_MANIFEST: database.sha256 is '$B_SHA'"
    B_FILE_BYTES=$(stat -c %s "$B_FILE")
}

# sha256 [FILE]   the SHA-256 of FILE or stdin, hex: the benchmarks' own (untimed) checks use
# OpenSSL, 3x coreutils' sha256sum here (SHA instructions), to keep the suite within its time.
sha256() { openssl dgst -sha256 -r "$@" | cut -d' ' -f1; }

manifest_value() {  # manifest_value MANIFEST KEY...   -> the value at that path in the JSON file
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(v)' "$@"
}

inflate() {  # inflate FILE   -> a backup's database on stdout, by its suffix (.zst: zstd, else gzip)
    case $1 in
        *.zst) zstd -q -dc -- "$1" ;;
        *) gunzip -c -- "$1" ;;
    esac
}

# The source's schema and row counts, read with immutable=1 (a plain connection to a WAL
# database would leave a -wal and -shm behind): SRC_URI, SRC_TABLES, SRC_INDEXES.
# shellcheck disable=SC2034   # SRC_* are the caller's
bench_source_schema() {
    local p=${DB//%/%25}; p=${p//\?/%3f}; p=${p//#/%23}
    SRC_URI="file:$p?mode=ro&immutable=1"
    SRC_TABLES=$(sqlite3 -batch -init /dev/null "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
    SRC_INDEXES=$(sqlite3 -batch -init /dev/null "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'index'")
}

row_counts() {  # row_counts URI-OR-PATH   -> "table count" per table, by name
    local t
    for t in $(sqlite3 -batch -init /dev/null "$1" "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"); do
        echo "$t $(sqlite3 -batch -init /dev/null "$1" "SELECT count(*) FROM \"$t\"")"
    done
}
