#if canImport(Glibc)
import Glibc
#endif

/// The database as a WAL's committed prefix leaves it, built on a scratch copy: the main file
/// copied, the `-wal` copied up to its last valid commit frame, and SQLite's own recovery
/// laying one over the other. Nothing live is opened by SQLite or written.
///
/// It answers two questions `inspect` cannot answer from the WAL alone:
/// - **does the WAL fit this file?** Salts cannot tell a `-wal` left from another generation
///   of the database (an old copy put back by hand beside a newer WAL). The overlay's b-trees
///   can: `quick_check` of the whole file and `integrity_check` of every table (with its
///   indexes) whose pages the WAL writes. A WAL whose overlay breaks a file that is sound
///   without it is foreign or damaged, and a checkpoint would write it into the file;
/// - **which table or index owns each page** (SQLite's `dbstat`), so lost pages can be
///   reported as "tasks 30, audit 9" rather than page numbers.
///
/// Against a running service the copy is taken between two readings of the `-shm`'s
/// checkpoint progress and the WAL's header; when a checkpoint or a WAL reset happened in
/// between, it is taken again (three times at most, then the answer is "unchecked").
public struct WALOverlay: Sendable {
    public enum Fit: String, Sendable, Encodable {
        case fits = "yes"
        case breaks = "no"
        case unchecked
        case nothingToCheck = "nothing to check"
    }

    public var fit: Fit
    /// One sentence: what was checked and what it found.
    public var detail: String
    /// Page number → the table or index that owns it, in the overlaid database (overflow
    /// pages count for their table); empty when unknown.
    public var owners: [UInt32: String]
    /// The overlaid database's size in pages.
    public var pageCount: UInt32
    /// The main file alone passed `integrity_check` (checked only when the overlay failed).
    public var mainFileSound: Bool?

    /// The owner of `page`, "(new pages)" past the end, "(free or unused)" for pages no
    /// b-tree owns.
    public func owner(of page: UInt32) -> String {
        if let name = owners[page] { return name }
        if page > pageCount { return "(new pages)" }
        return owners.isEmpty ? "(unknown)" : "(free or unused)"
    }

    /// Pages counted by owner, largest first: `tasks 30, audit 9, idx_tasks_status 2`.
    public func tally(_ pages: some Sequence<UInt32>) -> [(name: String, pages: Int)] {
        var counts: [String: Int] = [:]
        for page in pages { counts[owner(of: page), default: 0] += 1 }
        return counts.map { ($0.key, $0.value) }.sorted { $0.pages != $1.pages ? $0.pages > $1.pages : $0.name < $1.name }
    }

    public static func describe(_ tally: [(name: String, pages: Int)]) -> String {
        tally.map { "\($0.name) \($0.pages)" }.joined(separator: ", ")
    }

    /// Checks the overlay of `wal`'s committed prefix on `database` in a scratch directory in
    /// `tempDir`, then removes it. `wal` is the inspection of `database`'s `-wal` just read.
    /// Never throws for what it finds: a problem with the scratch space makes it "unchecked".
    public static func check(database: String, wal: WALInspection, tempDir: String, busyTimeoutMs: Int) -> WALOverlay {
        let scratch: String
        do {
            scratch = try makeScratchDirectory(in: tempDir)
        } catch {
            return unchecked("no scratch directory in \(tempDir): \(error)")
        }
        defer { SafeFiles.removeTempDirectory(scratch) }
        do {
            // Scratch space in temp_dir keeps its filesystem's 10% headroom, as a drill does.
            let built = try build(database: database, wal: wal, into: scratch, headroom: .keepTenPercent, busyTimeoutMs: busyTimeoutMs,
                                  checkpoint: false)
            return built.overlay
        } catch {
            return unchecked("\(error)")
        }
    }

    static func unchecked(_ why: String) -> WALOverlay {
        WALOverlay(fit: .unchecked, detail: "could not check whether the WAL fits the database: \(why)", owners: [:], pageCount: 0)
    }

    /// A new scratch directory in `directory`. Stale temp files there are not swept here:
    /// every tool sweeps temp_dir when it starts, except diskcheck, whose `--fix` removes them
    /// in its own step and counts them there.
    static func makeScratchDirectory(in directory: String) throws -> String {
        let scratch = SafeFiles.tempPath(in: directory, tag: "walfix")
        try Syscall.call(.open) { mkdir(scratch, 0o700) }
        return scratch
    }

    /// Builds the overlay as `directory/NAME` (its prefix `-wal` beside it), checks it and
    /// leaves it there with SQLite's connection closed; with `checkpoint`, the WAL
    /// checkpointed into it and gone when it fits (a candidate). Returns the overlay's
    /// findings and the file's path.
    ///
    /// `wal` must describe the `-wal` at `walPath` (default: `database`'s). Throws when the
    /// copy cannot be made (space, I/O, a WAL that keeps changing).
    public static func build(database: String, wal: WALInspection, walPath: String? = nil, into directory: String,
                             headroom: SpaceBudget.Headroom = .allFree, busyTimeoutMs: Int, checkpoint: Bool = true) throws -> (overlay: WALOverlay, path: String) {
        let live = DatabaseFiles(database)
        let walPath = walPath ?? live.wal
        let prefixBytes = wal.committedFrames > 0 ? Int64(WALHeader.size) + Int64(wal.committedFrames) * Int64(WALFrame.headerSize + wal.pageSize) : 0
        let size = try FileStatus.of(database)?.size ?? 0
        try SpaceBudget.of(directory, headroom: headroom).require(size + prefixBytes, for: "a scratch copy of \(database) with its committed WAL")
        let target = SafeFiles.tempPath(in: directory, tag: "overlay.db")
        let targetFiles = DatabaseFiles(target)
        for attempt in 1...3 {
            for path in targetFiles.all { SafeFiles.removeQuietly(path) }
            let before = try snapshotMarker(live, walPath: walPath)
            if prefixBytes > 0 { try copyPrefix(of: walPath, bytes: prefixBytes, to: targetFiles.wal) }
            try SafeFiles.copy(database, toNew: target, followSymlinks: true)
            let after = try snapshotMarker(live, walPath: walPath)
            // The copy of the prefix must read as the same prefix, and nothing may have been
            // checkpointed into the main file while it was copied.
            let copied = prefixBytes > 0 ? try WALInspection.inspect(targetFiles.wal) : nil
            let samePrefix = copied.map { $0.committedFrames == wal.committedFrames && $0.salt1 == wal.salt1 && $0.salt2 == wal.salt2 } ?? true
            if before == after && samePrefix { break }
            if attempt == 3 {
                for path in targetFiles.all { SafeFiles.removeQuietly(path) }
                throw AbathurError(.busy, database, "the database was checkpointed while it was copied, three times; try again when it is quieter")
            }
            Clock.sleep(seconds: 0.2)
        }
        let touched = Set(wal.committed.flatMap(\.pages))
        var (overlay, tables) = try examine(target, busyTimeoutMs: busyTimeoutMs, hasWAL: prefixBytes > 0, scope: .pages(touched),
                                            checkpoint: checkpoint)
        if overlay.fit == .breaks {
            // Is the main file sound without the WAL? Then the WAL does not belong to it.
            let alone = SafeFiles.tempPath(in: directory, tag: "main.db")
            defer { for path in DatabaseFiles(alone).all { SafeFiles.removeQuietly(path) } }
            try SafeFiles.copy(database, toNew: alone, followSymlinks: true)
            let main = try? examine(alone, busyTimeoutMs: busyTimeoutMs, hasWAL: false, scope: .tables(tables), checkpoint: false).0
            overlay.mainFileSound = main?.fit == .fits
            overlay.detail += overlay.mainFileSound == true
                ? "; the main file alone passes the same checks: this WAL does not belong to it (another generation of the file) or is damaged, and a checkpoint would write it in"
                : "; the main file alone fails too (\(main?.detail ?? "unreadable")): the database itself is damaged (abathur-integrity)"
        }
        return (overlay, target)
    }

    /// What tells a checkpoint or a WAL reset apart: the `-shm`'s backfill count and the WAL
    /// header's salts and sequence.
    static func snapshotMarker(_ live: DatabaseFiles, walPath: String) throws -> [UInt32] {
        let index = try? WALIndexFile.read(live.shm)
        var marker: [UInt32] = [index?.nBackfill ?? 0, index?.mxFrame ?? 0]
        if let header = try? WALReader(walPath) {
            marker += [header.header?.salt1 ?? 0, header.header?.salt2 ?? 0, header.header?.checkpointSequence ?? 0]
            try? header.close()
        }
        return marker
    }

    /// Copies the first `bytes` of `source` into a new file `target`.
    static func copyPrefix(of source: String, bytes: Int64, to target: String) throws {
        let input = try FileDescriptor.openForReading(source)
        defer { try? input.close() }
        let output = try FileDescriptor.createExclusive(target)
        var left = bytes
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while left > 0 {
            let want = Int(min(Int64(buffer.count), left))
            let got = try buffer.withUnsafeMutableBytes { try input.readFully(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            guard got == want else { throw AbathurError(.io, source, "shrank while it was copied") }
            try buffer.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[0..<want])) }
            left -= Int64(want)
        }
        try output.close()
    }

    /// What `examine` checks.
    enum Scope {
        /// `quick_check` of the whole file (every b-tree's structure, the freelist, pages no
        /// b-tree uses), then `integrity_check` of each table that owns one of these pages,
        /// with its indexes (their content against the table's rows): the b-trees the WAL
        /// touches. Page 1 belongs to the schema's own table, `sqlite_schema`.
        case pages(Set<UInt32>)
        /// The same for these tables.
        case tables([String])
    }

    /// Opens the scratch copy with SQLite (recovering its `-wal`, if any), names the owner of
    /// every page (`dbstat`), checks it as `scope` says, and checkpoints when `checkpoint`.
    /// Returns the findings and the tables whose `integrity_check` ran.
    static func examine(_ path: String, busyTimeoutMs: Int, hasWAL: Bool, scope: Scope, checkpoint: Bool) throws -> (WALOverlay, [String]) {
        let what = hasWAL ? "the committed prefix laid over a scratch copy" : "a scratch copy of the main file"
        var overlay = WALOverlay(fit: .fits, detail: "", owners: [:], pageCount: 0)
        let connection: Connection
        do {
            connection = try Connection(path: path, mode: .readWrite, busyTimeoutMs: busyTimeoutMs)
        } catch {
            overlay.fit = .breaks
            overlay.detail = "SQLite cannot open \(what): \(error.message)"
            return (overlay, [])
        }
        // A scratch copy that is only looked at: closing it need not copy the WAL in.
        if !checkpoint { try? connection.keepWALOnClose() }
        var tables: [String] = []
        do {
            try connection.execute("PRAGMA temp_store=MEMORY")
            overlay.pageCount = UInt32(clamping: try connection.integer("PRAGMA page_count"))
            for row in try connection.rows("SELECT name, pageno FROM dbstat") {
                if let name = row[0], let page = row[1].flatMap({ UInt32($0) }) { overlay.owners[page] = name }
            }
            var tableOf: [String: String] = ["sqlite_schema": "sqlite_schema", "sqlite_master": "sqlite_schema"]
            for row in try connection.rows("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')") {
                if let name = row[0], let table = row[1] { tableOf[name] = table }
            }
            switch scope {
            case .pages(let pages):
                tables = Array(Set(pages.compactMap { overlay.owners[$0].flatMap { tableOf[$0] } })).sorted()
            case .tables(let names):
                tables = names
            }
            var failures = try connection.rows("PRAGMA quick_check(20)").compactMap { $0.first ?? nil }.filter { $0 != "ok" }
            for table in tables where failures.isEmpty {
                failures += try connection.rows("PRAGMA integrity_check(\(SQL.quoted(table)))").compactMap { $0.first ?? nil }.filter { $0 != "ok" }
            }
            let checked = tables.isEmpty ? "quick_check" : "quick_check and integrity_check of \(tables.joined(separator: ", "))"
            if failures.isEmpty {
                overlay.detail = "\(checked) ok on \(what)"
            } else {
                overlay.fit = .breaks
                overlay.detail = "\(checked) on \(what) found: \(failures.prefix(3).joined(separator: "; "))"
            }
        } catch {
            overlay.fit = .breaks
            overlay.detail = "SQLite cannot read \(what): \(error.message)"
        }
        if checkpoint, overlay.fit == .fits, hasWAL {
            guard try connection.checkpointTruncate() else { throw AbathurError(.busy, path, "cannot checkpoint the scratch copy") }
        }
        return (overlay, tables)
    }
}
