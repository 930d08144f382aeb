#if canImport(Glibc)
import Glibc
#endif

/// `--drill`: the newest verified backup restored into a scratch directory, checked like a
/// real candidate, compared with the live database, and timed: the measured time to recover.
/// It never touches the live database (read through `LiveReader`) or the units.
public enum Drill {
    public struct TableCount: Sendable, Encodable {
        public var table: String
        public var backup: Int64
        public var live: Int64?
        public var delta: Int64?
    }

    public struct Report: Sendable, Encodable {
        public var source: ChosenSource
        public var scratch: String
        public var steps: [Timeline.Step]
        /// Locate, decompress and check: what a restore spends before it swaps.
        public var timeToRecoverSeconds: Double
        public var totalSeconds: Double
        public var rowCounts: [TableCount]
        public var live: String
        public var warnings: [String]
    }

    public static func run(_ request: RestoreRequest, events: EventSink = .ignore) throws -> Report {
        let timeline = Timeline(events: events)
        var warnings: [String] = []
        // A read-only backup directory (a DR share) is only read: no lock, nothing written there.
        let readOnly = FileLock.readOnlyReason(request.backupDir)
        if readOnly == nil { try SafeFiles.ensureDirectory(request.backupDir) }
        let lock = try timeline.step("lock") {
            let lock = try FileLock.acquireUnlessReadOnly(Paths.join(request.backupDir, Catalog.lockName), wait: request.lockWait)
            guard lock != nil else { return (lock, "backup directory read-only (\(readOnly ?? "not writable")): no lock needed to read it") }
            let recovery = Catalog.recover(request.backupDir)
            warnings += recovery.problems
            return (lock, (["backup directory locked"] + recovery.summary).joined(separator: "; "))
        }
        defer { lock?.release() }
        let source = try ChosenSource.locate(request, on: timeline)
        // The scratch copy is held to the space budget of temp_dir, before writing (the
        // manifest's size or the file's estimate) and as the bytes arrive.
        let budget = try SpaceBudget.of(request.tempDir)
        try budget.require(try Candidate.estimatedSize(of: source), for: "the drill's scratch copy")
        let limit = source.manifest.map(InflationLimit.manifest) ?? InflationLimit.budget(budget)
        // A killed drill leaves its scratch copy in temp_dir, which no lock guards: remove
        // the ones whose process is gone.
        SafeFiles.sweepTemps(in: request.tempDir)
        let scratch = SafeFiles.tempPath(in: request.tempDir, tag: "drill")
        guard mkdir(scratch, 0o700) == 0 else { throw AbathurError(Errno.current.kind, scratch, "cannot create directory: \(Errno.current)") }
        var written: Candidate?
        defer {
            if let written { SafeFiles.removeQuietly(written.path) }
            rmdir(scratch)
        }
        written = try timeline.step("decompress") {
            let candidate = try Candidate.write(from: source, into: scratch, force: request.force, limit: limit)
            return (candidate, "\(candidate.bytes) bytes" + (source.manifest == nil ? "" : "; sha256 matches the manifest"))
        }
        let checked = try timeline.step("check candidate") {
            let checked = try CandidateCheck.run(written!.path, source: source.path ?? "stdin", manifest: source.manifest,
                                                 live: request.database, request: request)
            return (checked, checked.summary)
        }
        warnings += checked.warnings
        let recover = timeline.steps.map(\.durationMs).reduce(0, +)

        var counts = checked.report.rowCounts.keys.sorted().map { TableCount(table: $0, backup: checked.report.rowCounts[$0]!) }
        do {
            try timeline.step("compare with the live database") {
                let live = try LiveReader.read(request.database, busyTimeoutMs: request.busyTimeoutMs, tempDirectory: scratch) { db in
                    counts.map { row -> Int64? in
                        do { return try db.integer("SELECT count(*) FROM \(SQL.quoted(row.table))") } catch { return nil }
                    }
                }
                for (i, value) in live.enumerated() {
                    counts[i].live = value
                    counts[i].delta = value.map { $0 - counts[i].backup }
                }
                let missing = counts.filter { $0.live == nil }.map(\.table)
                let shrunk = counts.filter { Double(-($0.delta ?? 0)) > Double($0.backup) * request.shrinkWarning }.map { "\($0.table) (\($0.delta!))" }
                if !missing.isEmpty { warnings.append("\(request.database): table(s) missing in the live database: \(missing.joined(separator: ", "))") }
                if !shrunk.isEmpty { warnings.append("\(request.database): lost more than \(Int(request.shrinkWarning * 100))% of the backup's rows in \(shrunk.joined(separator: ", "))") }
                let newer = counts.compactMap(\.delta).reduce(0, +)
                return ((), "live database has \(newer >= 0 ? "+" : "")\(newer) rows against the backup")
            }
        } catch let error as AbathurError {
            warnings.append("cannot compare with the live database: \(error.description)")
        }
        return Report(source: source, scratch: scratch, steps: timeline.steps, timeToRecoverSeconds: Double(recover) / 1000,
                      totalSeconds: Double(timeline.totalMs) / 1000, rowCounts: counts, live: request.database, warnings: warnings)
    }
}
