#if canImport(Glibc)
import Glibc
#endif

/// `abathur-integrity --recover OUT [PATH]` (issue 13): salvage by reading the file format.
///
/// copy (the live database's forensic copy in `BACKUP_DIR/forensic`, kept; another file's in
/// `temp_dir`, removed) → the header, or the manifest where it is gone → the `-wal`'s
/// committed frames laid over the pages, unless they break b-trees the main file alone keeps
/// whole → the schema (page 1, else the manifest) → every row into a new database beside OUT
/// → the full checks on it → the comparison with the newest backup → OUT (link, never
/// replacing). The source is only ever read.
///
/// With `apply`: the same, from the safety copy SafeInstall takes with the units stopped, and
/// then a copy of OUT is installed through SafeInstall (swap, post-check, start, health check,
/// rollback).
public final class SalvageJob {
    public struct Request: Sendable {
        public var source: String
        /// The source is the configured live database (a forensic copy is kept, `apply` allowed).
        public var live: Bool
        public var output: String
        public var includeFreelist = false
        public var apply = false
        public var restore: RestoreRequest

        public init(source: String, live: Bool, output: String, restore: RestoreRequest) {
            self.source = source
            self.live = live
            self.output = output
            self.restore = restore
        }
    }

    public struct TableReport: Sendable, Encodable {
        public var name: String
        public var recovered: Int
        public var fromTree: Int
        public var fromOrphanPages: Int
        public var carved: Int
        public var duplicates: Int
        public var toLostAndFound: Int
        // The comparison's fields are `null` in the JSON without a backup, never missing
        // (salvage-cli's contract: the fields are always there).
        /// Rows in the newest backup's manifest.
        @NullInJSON public var inBackup: Int64?
        /// Backup rows that are only in lost_and_found (same rowid and values).
        @NullInJSON public var inLostAndFoundOnly: Int64?
        /// Rows whose values differ from the newest backup's row with the same rowid.
        @NullInJSON public var altered: Int64?
        @NullInJSON public var alteredRowids: [Int64]?
        /// Backup rows not recovered at all.
        @NullInJSON public var missing: Int64?
        /// Recovered rows the backup does not have (written since, or not trustworthy).
        @NullInJSON public var notInBackup: Int64?
    }

    public struct WALUse: Sendable, Encodable {
        public var present = false
        public var used = false
        public var committedFrames = 0
        public var detail = ""
    }

    public struct Outcome: Sendable, Encodable {
        public var source: String
        public var output: String
        public var written = false
        public var forensicCopy: String?
        public var pageSize = 0
        public var pages = 0
        public var pageSizeFrom = ""
        public var headerProblem: String?
        public var schemaFrom: SalvageSchema.Origin?
        public var wal = WALUse()
        public var tables: [TableReport] = []
        public var lostAndFound = 0
        public var lostAndFoundTable: String?
        public var problems = 0
        public var problemSamples: [String] = []
        public var orphanPagesAttributed = 0
        public var orphanPagesLost = 0
        public var pagesCarved = 0
        public var freelistPages = 0
        /// The newest backup compared with; `null` in the JSON when there was none.
        @NullInJSON public var backup: String?
        public var backupNote: String?
        public var checks: [Manifest.Check] = []
        public var notes: [String] = []
        public var applied = false
        public var safetyCopy: String?
        public var result = "failed"
        public var phasesMs: [String: Int64] = [:]
        public var steps: [Timeline.Step] = []
        public var totalMs: Int64 = 0

        public var recovered: Int { tables.reduce(0) { $0 + $1.recovered } }
        public var altered: Int64 { tables.reduce(0) { $0 + ($1.altered ?? 0) } }
        /// The salvaged file passes integrity_check.
        public var outputSound: Bool {
            !checks.isEmpty && checks.filter { $0.name == "header" || $0.name == "integrity_check" || $0.name == "quick_check" }.allSatisfy(\.ok)
        }
        /// Nothing needs a look: no damage met, nothing unattributed, nothing altered, every
        /// check passed, the WAL used when there was one.
        public var clean: Bool {
            problems == 0 && headerProblem == nil && lostAndFound == 0 && altered == 0 && checks.allSatisfy(\.ok) && (!wal.present || wal.used || wal.committedFrames == 0)
        }
    }

    let request: Request
    public let timeline: Timeline
    public private(set) var outcome: Outcome
    private var temps: [String] = []
    /// The scratch directory holding the copy of a file that is not the live database.
    private var scratchDirectory: String?

    public init(request: Request, events: EventSink = .ignore) {
        self.request = request
        timeline = Timeline(events: events)
        outcome = Outcome(source: request.source, output: request.output)
    }

    deinit {
        for path in temps { SafeFiles.removeQuietly(path) }
    }

    /// Runs it; the outcome is kept whether it succeeds or throws. An SQLite error (a full
    /// disk under OUT: SQLITE_FULL) is reported by its kind, like every tool's.
    public func run() throws {
        defer {
            outcome.steps = timeline.steps
            outcome.totalMs = timeline.totalMs
        }
        do { try runReported() } catch { throw error.reported }
    }

    private func runReported() throws {
        let source = request.source, output = request.output
        if try FileStatus.of(output) != nil { throw AbathurError(.alreadyExists, output, "already exists; the salvage writes a new file and never replaces one") }
        guard let directory = try FileStatus.of(Paths.directory(of: output)), directory.isDirectory else {
            throw AbathurError(.notFound, Paths.directory(of: output), "no such directory for the salvaged database")
        }
        guard let status = try FileStatus.of(source) else { throw AbathurError(.notFound, source, "no such file") }
        guard status.isRegular else { throw AbathurError(.unsafePath, source, status.isSymlink ? "is a symlink; give its target" : "not a regular file") }
        if DatabaseFiles(source).all.contains(where: { Paths.absolute($0) == Paths.absolute(output) }) {
            throw AbathurError(.usage, output, "is the source database or one of its files")
        }
        if request.apply { return try applying() }

        var locks: [FileLock] = []
        defer { locks.removeAll() }
        defer { if let scratchDirectory { SalvageJob.removeTree(scratchDirectory) } }
        let copy: SafetyCopy = try timeline.step("copy") {
            if request.live {
                let backupDir = request.restore.backupDir
                let held = try FileLock.backupDirectoryAndDatabase(backupDir, source, wait: request.restore.lockWait, refusingReadOnly: nil)
                locks = held.locks
                let root = !held.readOnly ? Paths.join(backupDir, WALRepair.forensicDirName)
                    : Paths.join(Paths.directory(of: source), WALRepair.forensicBesideDatabaseDirName)
                let copy = try SalvageJob.steadyCopy(of: source, into: root, tag: "salvage")
                outcome.forensicCopy = copy.directory
                return (copy, "forensic copy \(copy.directory)")
            }
            let scratch = SafeFiles.tempPath(in: request.restore.tempDir, tag: "salvage")
            try SafeFiles.ensureDirectory(request.restore.tempDir)
            guard mkdir(scratch, 0o700) == 0 else { throw AbathurError(Errno.current.kind, scratch, "cannot create directory: \(Errno.current)") }
            scratchDirectory = scratch
            return (try SalvageJob.steadyCopy(of: source, into: scratch, tag: "salvage"), "scratch copy in \(request.restore.tempDir)")
        }
        try salvage(copy)
    }

    /// Removes a scratch directory of ours: the copy's directory in it, their files, itself.
    static func removeTree(_ directory: String) {
        for name in (try? SafeFiles.listDirectory(directory)) ?? [] {
            let path = Paths.join(directory, name)
            for file in (try? SafeFiles.listDirectory(path)) ?? [] { SafeFiles.removeQuietly(Paths.join(path, file)) }
            if rmdir(path) != 0 { SafeFiles.removeQuietly(path) }
        }
        rmdir(directory)
        TerminationCleanup.unregister(directory)
    }

    /// Copies the database and its companions, again if a checkpoint or a WAL reset happened
    /// meanwhile (a service still writing), at most three times.
    static func steadyCopy(of database: String, into root: String, tag: String) throws -> SafetyCopy {
        let live = DatabaseFiles(database)
        for attempt in 1...3 {
            let before = try WALOverlay.snapshotMarker(live, walPath: live.wal)
            let sizes = try live.all.map { try FileStatus.of($0)?.size ?? -1 }
            guard let copy = try SafetyCopy.make(of: database, into: root, tag: tag) else {
                throw AbathurError(.notFound, database, "no such file")
            }
            let after = try WALOverlay.snapshotMarker(live, walPath: live.wal)
            if before == after, sizes == (try live.all.map { try FileStatus.of($0)?.size ?? -1 }) || attempt == 3 { return copy }
            for file in copy.files { SafeFiles.removeQuietly(Paths.join(copy.directory, file.name)) }
            rmdir(copy.directory)
            Clock.sleep(seconds: 0.2)
        }
        throw AbathurError(.busy, database, "kept changing while it was copied")
    }

    // MARK: - The salvage

    /// Salvages the copy into OUT.
    func salvage(_ copy: SafetyCopy) throws {
        guard let main = copy.path(of: .main) else { throw AbathurError(.notFound, request.source, "no such file") }
        let wal = copy.path(of: .wal)
        let newest = try? newestBackup()
        let manifest = newest?.manifest
        let started = Clock.now()
        let geometry = try SalvageGeometry.read(main, manifest: manifest)
        outcome.pageSize = geometry.pageSize
        outcome.pageSizeFrom = geometry.pageSizeFrom
        outcome.headerProblem = geometry.headerProblem
        let base = try FilePageSource(path: main, pageSize: geometry.pageSize)
        var source: PageSource = base
        if let wal, (try FileStatus.of(wal)?.size ?? 0) > 0 {
            outcome.wal.present = true
            if let overlay = WALPageSource(base: base, walPath: wal) {
                outcome.wal.committedFrames = overlay.frames.count
                let early = SalvageJob.rowsTheMainFileHasEarly(base: base, wal: overlay, usableSize: geometry.usableSize)
                let with = survey(overlay, geometry, manifest), without = survey(base, geometry, manifest)
                if early >= 2 {
                    outcome.wal.detail = "left out: the main file already holds \(early) row(s) that this WAL inserts only in its later commits: the main file is newer, and the WAL belongs to an earlier generation of it"
                } else if with.problems > without.problems {
                    outcome.wal.detail = "left out: laid over the main file, its \(overlay.frames.count) committed page(s) break the b-trees (\(with.problems) problem(s), \(without.problems) without it); it belongs to another generation of the file or is damaged"
                } else {
                    source = overlay
                    outcome.wal.used = true
                    outcome.wal.detail = "\(overlay.frames.count) committed page(s) laid over the main file (\(with.problems) problem(s) with it, \(without.problems) without)"
                }
            } else {
                outcome.wal.detail = "no committed frame SQLite would read (an empty, torn or foreign -wal)"
            }
        }
        outcome.pages = Int(source.pageCount)

        let salvager = Salvager(source: source, usableSize: geometry.usableSize, autoVacuum: geometry.autoVacuum, utf8: geometry.textEncoding == .utf8)
        let schema = schemaFor(salvager.readSchemaRows(), manifest: manifest)
        outcome.schemaFrom = schema.origin
        guard !schema.tables.isEmpty else {
            outcome.result = "nothing recovered"
            throw AbathurError(.corrupt, request.source, "no table could be read: page 1 (the schema) is unreadable and no backup's manifest records root pages; nothing recovered")
        }
        let temp = SafeFiles.tempPath(in: Paths.directory(of: request.output), tag: "salvage.db")
        temps.append(temp)
        try FileDescriptor.createExclusive(temp).close()
        do {
            // The writer's connection closes at the end of this block, before the checks.
            let writer = try SalvageWriter(path: temp, schema: schema, pageSize: geometry.pageSize, encoding: geometry.textEncoding)
            try salvager.run(schema: schema, firstFreelistTrunk: freelistTrunk(source, geometry), includeFreelist: request.includeFreelist, sink: writer)
            outcome.phasesMs["rows"] = Int64((Clock.now() - started) * 1000)
            let indexing = Clock.now()
            try writer.finish(userVersion: geometry.userVersion, applicationId: geometry.applicationId, wal: geometry.wal)
            outcome.phasesMs["indexes"] = Int64((Clock.now() - indexing) * 1000)
            outcome.notes += writer.notes
            outcome.lostAndFoundTable = writer.lostAndFoundName
        }
        for companion in [DatabaseFiles(temp).wal, DatabaseFiles(temp).shm] where try FileStatus.of(companion) != nil {
            throw AbathurError(.io, companion, "left behind when the salvaged database was closed")
        }
        outcome.lostAndFound = salvager.lostRows
        outcome.problems = salvager.problemCount
        outcome.problemSamples = salvager.problems
        outcome.orphanPagesAttributed = salvager.orphanPagesAttributed
        outcome.orphanPagesLost = salvager.orphanPagesLost
        outcome.pagesCarved = salvager.pagesCarved
        outcome.freelistPages = salvager.freelistPages
        for (t, table) in schema.tables.enumerated() where !table.name.hasPrefix("sqlite_") {
            let c = salvager.counts[t]
            outcome.tables.append(TableReport(name: table.name, recovered: c.total, fromTree: c.tree, fromOrphanPages: c.orphan, carved: c.carved,
                                              duplicates: c.duplicates, toLostAndFound: c.toLostAndFound,
                                              inBackup: manifest?.rowCounts[table.name]))
        }
        guard outcome.recovered + outcome.lostAndFound > 0 else {
            outcome.result = "nothing recovered"
            throw AbathurError(.corrupt, request.source, "no row could be recovered; nothing written")
        }
        try SafeFiles.syncFile(temp)

        var phase = Clock.now()
        let check = try DatabaseCheck.run(path: temp, options: request.restore.check)
        outcome.checks = check.checks
        outcome.phasesMs["checks"] = Int64((Clock.now() - phase) * 1000)
        phase = Clock.now()
        if let newest { compare(temp, with: newest, schema: schema) }
        outcome.phasesMs["compare"] = Int64((Clock.now() - phase) * 1000)

        try SafeFiles.link(temp, as: request.output)
        try SafeFiles.syncDirectory(Paths.directory(of: request.output))
        SafeFiles.removeQuietly(temp)
        temps.removeAll { $0 == temp }
        outcome.written = true
        outcome.result = "recovered"
    }

    /// Rows the main file holds on a page that the WAL's first version of that page lacks
    /// and its last version has: rows the WAL inserts after its first commit to the page,
    /// already in the main file. A WAL that follows the main file cannot do that (its commits
    /// come after the main file's state); a WAL from an earlier generation, beside a main file
    /// that moved on, does. Table-leaf pages only.
    static func rowsTheMainFileHasEarly(base: PageSource, wal: WALPageSource, usableSize: Int) -> Int {
        func rowids(_ number: UInt32, _ bytes: [UInt8]?) -> Set<Int64>? {
            guard let bytes, let page = BTreePage(number: number, bytes: bytes, usableSize: usableSize), page.kind == .tableLeaf else { return nil }
            return Set((0..<page.cellCount).compactMap { i in
                page.cellOffset(i).flatMap { LocalPayload.tableLeafCell(bytes, at: $0, usableSize: usableSize)?.rowid }
            })
        }
        var early = 0
        for (number, firstOffset) in wal.firstFrames {
            guard let lastOffset = wal.frames[number], lastOffset != firstOffset,
                  let main = rowids(number, base.page(number)), let first = rowids(number, wal.frame(at: firstOffset)),
                  let last = rowids(number, wal.frame(at: lastOffset)) else { continue }
            early += last.subtracting(first).intersection(main).count
        }
        return early
    }

    /// The walk without writing: how many problems the b-trees show from `source`.
    func survey(_ source: PageSource, _ geometry: SalvageGeometry, _ manifest: Manifest?) -> (problems: Int, rows: Int) {
        let salvager = Salvager(source: source, usableSize: geometry.usableSize, autoVacuum: geometry.autoVacuum, utf8: geometry.textEncoding == .utf8)
        let schema = schemaFor(salvager.readSchemaRows(), manifest: manifest)
        try? salvager.run(schema: schema, firstFreelistTrunk: freelistTrunk(source, geometry), includeFreelist: false, sink: nil)
        return (salvager.problemCount, salvager.counts.reduce(0) { $0 + $1.total })
    }

    /// The freelist's first trunk as the source's own page 1 says (a WAL may carry a newer
    /// page 1), when that header is sound.
    func freelistTrunk(_ source: PageSource, _ geometry: SalvageGeometry) -> UInt32 {
        if let page = source.page(1), let header = try? DatabaseHeader(bytes: Array(page.prefix(DatabaseHeader.size))) {
            return header.firstFreelistTrunk
        }
        return geometry.firstFreelistTrunk
    }

    /// The schema page 1 gives, filled in from the manifest; the manifest's when page 1
    /// gives nothing.
    func schemaFor(_ rows: [[SQLValue]], manifest: Manifest?) -> SalvageSchema {
        let own = SalvageSchema.from(rows: rows)
        guard let manifest, let recorded = SalvageSchema.from(manifest: manifest.schema) else { return own }
        return own.tables.isEmpty ? recorded : own.filling(from: recorded)
    }

    func newestBackup() throws -> Catalog.Entry? {
        guard try FileStatus.of(request.restore.backupDir) != nil else { return nil }
        return try Catalog.scan(request.restore.backupDir).complete.first
    }

    // MARK: - The comparison with the newest backup

    /// Inflates the newest backup into temp_dir and compares the salvaged rows with it, table
    /// by table, by rowid. A backup that cannot be read (no space, damaged) is noted, and the
    /// salvage stands without the comparison.
    func compare(_ salvaged: String, with entry: Catalog.Entry, schema: SalvageSchema) {
        outcome.backup = entry.fileName
        guard let manifest = entry.manifest else { return }
        let copy = SafeFiles.tempPath(in: request.restore.tempDir, tag: "salvage-backup.db")
        defer { SafeFiles.removeQuietly(copy) }
        do {
            try SpaceBudget.of(request.restore.tempDir).require(manifest.database.bytes, for: "inflating \(entry.path) to compare with it")
            let output = try FileDescriptor.createExclusive(copy)
            let digest = try GzipFile.decompress(from: try FileDescriptor.openForReading(entry.path), to: output, limit: .manifest(manifest))
            try output.close()
            guard digest.rawSHA256 == manifest.database.sha256 else {
                outcome.backupNote = "\(entry.fileName) does not match its manifest: not compared"
                return
            }
            // Both files are ours and nothing writes them: immutable, so that no -wal or -shm
            // appears beside either.
            let db = try Connection(path: salvaged, mode: .immutable, busyTimeoutMs: request.restore.busyTimeoutMs)
            try db.execute("ATTACH DATABASE \(SQL.literal(Connection.uri(for: copy) + "?immutable=1")) AS bk")
            for i in outcome.tables.indices {
                let name = outcome.tables[i].name
                guard let table = schema.tables.first(where: { $0.name == name }),
                      try db.integer("SELECT count(*) FROM bk.sqlite_schema WHERE type = 'table' AND name = \(SQL.literal(name))") > 0 else { continue }
                let theirs = Set(try db.rows("SELECT name FROM pragma_table_info(\(SQL.literal(name)), 'bk')").compactMap { $0[0] })
                let q = SQL.quoted(name)
                let shared = table.columns.enumerated().filter { theirs.contains($0.element.name) && $0.offset != table.rowidAlias }
                let differs = shared.isEmpty ? "0" : shared.map { "a.\(SQL.quoted($0.element.name)) IS NOT b.\(SQL.quoted($0.element.name))" }.joined(separator: " OR ")
                outcome.tables[i].inBackup = try db.integer("SELECT count(*) FROM bk.\(q)")
                outcome.tables[i].missing = try db.integer("SELECT count(*) FROM bk.\(q) b WHERE NOT EXISTS (SELECT 1 FROM main.\(q) a WHERE a.rowid = b.rowid)")
                outcome.tables[i].notInBackup = try db.integer("SELECT count(*) FROM main.\(q) a WHERE NOT EXISTS (SELECT 1 FROM bk.\(q) b WHERE b.rowid = a.rowid)")
                let altered = try db.rows("SELECT a.rowid FROM main.\(q) a JOIN bk.\(q) b ON a.rowid = b.rowid WHERE \(differs)").compactMap { $0[0].flatMap { Int64($0) } }
                outcome.tables[i].altered = Int64(altered.count)
                outcome.tables[i].alteredRowids = Array(altered.prefix(100))
                if let lost = outcome.lostAndFoundTable {
                    let same = table.columns.enumerated().filter { theirs.contains($0.element.name) && $0.offset != table.rowidAlias }
                        .map { "l.c\($0.offset) IS b.\(SQL.quoted($0.element.name))" }
                    outcome.tables[i].inLostAndFoundOnly = try db.integer("""
                        SELECT count(DISTINCT l.row_id) FROM main.\(SQL.quoted(lost)) l JOIN bk.\(q) b ON b.rowid = l.row_id
                        WHERE l.nfield = \(table.columns.count) AND NOT EXISTS (SELECT 1 FROM main.\(q) a WHERE a.rowid = l.row_id)
                        \(same.isEmpty ? "" : "AND " + same.joined(separator: " AND "))
                        """)
                } else {
                    outcome.tables[i].inLostAndFoundOnly = 0
                }
            }
        } catch {
            outcome.backupNote = "\(entry.fileName): not compared: \(error)"
        }
    }

    // MARK: - --apply

    /// Salvages from the safety copy SafeInstall takes with the units stopped, and installs a
    /// copy of OUT when it passes integrity_check.
    func applying() throws {
        guard request.live else { throw AbathurError(.usage, request.source, "--apply installs into the live database: give no PATH") }
        let restore = request.restore
        let database = request.source
        var locks: [FileLock] = []
        defer { locks.removeAll() }
        try timeline.step("lock") {
            locks = try FileLock.backupDirectoryAndDatabase(restore.backupDir, database, wait: restore.lockWait,
                                                            refusingReadOnly: "the salvage keeps the corrupt original's safety copy there").locks
            return ((), "backup directory and database locked")
        }
        let check = restore.check
        let policy = SafeInstall.Policy(database: database, units: Units(restore.services), health: restore.health,
                                        safetyRoot: restore.safetyRoot, tag: "salvage", force: restore.force,
                                        busyTimeoutMs: restore.busyTimeoutMs, check: check)
        let install = SafeInstall(policy: policy, timeline: timeline)
        let result = install.install(preparing: { safety in
            guard let safety else { throw AbathurError(.notFound, database, "no such file") }
            outcome.safetyCopy = safety.directory
            try timeline.step("salvage") {
                try salvage(safety)
                return ((), "\(outcome.recovered) row(s) into \(request.output)")
            }
            guard outcome.outputSound else {
                throw AbathurError(.checkFailed, request.output, "the salvaged database fails integrity_check; not installed")
            }
            let candidate = SafeFiles.tempPath(in: Paths.directory(of: database), tag: "salvage-candidate.db")
            temps.append(candidate)
            let (sha256, _) = try SafeFiles.copy(request.output, toNew: candidate, sync: true)
            var candidateCheck = check
            candidateCheck.structural = true
            return SafeInstall.Candidate(path: candidate, sha256: sha256, rowCounts: nil, check: candidateCheck)
        })
        outcome.warnings(install.report.warnings)
        switch result {
        case .installed:
            temps.removeAll { $0.contains("salvage-candidate") }
            outcome.applied = true
            outcome.result = "applied"
        case .rolledBack(_, let why):
            outcome.result = "rolled back"
            throw AbathurError(.checkFailed, database, "salvage rolled back: \(why); \(database) is as it was (safety copy \(outcome.safetyCopy ?? "?"))")
        case .refused(let why):
            outcome.result = "refused"
            throw why
        case .failed(_, let why):
            throw why
        }
    }
}

extension SalvageJob.Outcome {
    mutating func warnings(_ lines: [String]) { notes += lines }
}

/// An optional field that a JSON document carries as `null` rather than leaving out.
@propertyWrapper
public struct NullInJSON<Value: Encodable & Sendable>: Encodable, Sendable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}
