#if canImport(Glibc)
import Glibc
#endif

/// `abathur-restore --migrate FILE` (issue 15): a schema change applied through the safe path.
///
/// lock → (SafeInstall) stop the units, prove nothing holds the database, safety copy →
/// a labelled `pre-migrate` backup through the backup code (the restore point) → a copy of
/// the database beside it → the file applied to the copy in one transaction (foreign keys set
/// before BEGIN, as the header says) → the full checks, the foreign-key audit and the expected
/// schema → (SafeInstall) swap, post-check, start, health check, rollback on failure.
///
/// A failing statement, a check that fails or a refused statement changes nothing live:
/// exit 3, the units start again. `dryRun` (and `drill`) run the file and the checks on a
/// scratch copy of the live database in `temp_dir` while the service keeps running.
public final class MigrationJob {
    public enum Mode: String, Sendable, Encodable {
        case migrate, dryRun = "dry-run", drill
    }

    public struct Outcome: Sendable, Encodable {
        public var database: String
        public var script: String
        public var header: MigrationScript.Header
        public var mode: Mode
        /// `migrated`, `checked` (dry run, drill), `rolled back`, `refused`, `failed`.
        public var result = "failed"
        public var backup: String?
        public var safetyCopy: String?
        public var statements: [ScriptStatement] = []
        public var failedStatement: ScriptStatement?
        public var diff: SchemaDiff?
        public var audit: ForeignKeyAudit?
        public var checks: [Manifest.Check] = []
        /// How long the units were (or, for a dry run, would be) stopped.
        public var unitsStoppedMs: Int64?
        public var holders: [Holder] = []
        public var steps: [Timeline.Step] = []
        public var totalMs: Int64 = 0
        public var warnings: [String] = []
        /// The `expect_tables` to set when the migration removed tables it lists.
        public var newExpectTables: String?
        /// The `expect_min_indexes` to set when fewer indexes are left than it says.
        public var newExpectMinIndexes: Int?
        public var incidentRecord: String?
    }

    let request: RestoreRequest
    /// How the pre-migrate backup is taken (labelled by the job).
    let backup: BackupRequest
    let script: MigrationScript
    let mode: Mode
    /// `--expect-tables`: the tables that must exist afterwards when the file does not say.
    let expectTables: [String]?
    let configuredTables: [String]
    public let timeline: Timeline
    public private(set) var outcome: Outcome
    private var temps: [String] = []
    /// The migrated copy's rows per table: the installed database must have the same.
    private var rowsAfter: [String: Int64]?
    /// The checks the migrated schema passes: what the post-check of the swap runs.
    private var checkAfter: DatabaseCheck.Options?
    /// Indexes the migrated copy has.
    private var indexesAfter: Int?

    public init(request: RestoreRequest, backup: BackupRequest, script: MigrationScript, mode: Mode, expectTables: [String]?,
                configuredTables: [String], events: EventSink = .ignore) {
        self.request = request
        self.backup = backup
        self.script = script
        self.mode = mode
        self.expectTables = expectTables
        self.configuredTables = configuredTables
        timeline = Timeline(events: events)
        outcome = Outcome(database: request.database, script: script.path, header: script.header, mode: mode)
    }

    deinit {
        for path in temps { SafeFiles.removeQuietly(path) }
    }

    /// Runs it; the outcome is kept whether it succeeds or throws.
    public func run() throws {
        defer {
            outcome.steps = timeline.steps
            outcome.totalMs = timeline.totalMs
        }
        let database = request.database
        try SafeInstall.requireExisting(database)
        if mode != .migrate { return try rehearse() }

        var locks: [FileLock] = []
        defer { locks.removeAll() }
        try timeline.step("lock") {
            locks = try FileLock.backupDirectoryAndDatabase(request.backupDir, database, wait: request.lockWait,
                                                            refusingReadOnly: "a migration needs its pre-migrate backup there").locks
            return ((), "backup directory and database locked")
        }
        let policy = SafeInstall.Policy(database: database, units: Units(request.services), health: request.health,
                                        safetyRoot: request.safetyRoot, tag: "migrate", force: request.force,
                                        busyTimeoutMs: request.busyTimeoutMs, check: request.check)
        let install = SafeInstall(policy: policy, timeline: timeline)
        let result = install.install(preparing: { safety in try self.prepare(safety) })
        let report = install.report
        outcome.holders = report.holders
        outcome.safetyCopy = report.safetyCopy?.directory
        outcome.warnings += report.warnings
        outcome.unitsStoppedMs = unitsStopped()
        switch result {
        case .installed:
            outcome.result = "migrated"
            removedExpectedTables()
        case .rolledBack(_, let why):
            outcome.result = "rolled back"
            throw AbathurError(.checkFailed, database, "migration rolled back: \(why); \(database) is as it was (safety copy \(outcome.safetyCopy ?? "?"))")
        case .refused(let why):
            outcome.result = "refused"
            throw why
        case .failed(_, let why):
            outcome.result = why.exitCode == .verificationFailed ? "refused" : "failed"
            throw why
        }
    }

    /// With the units stopped and the safety copy made: the restore point, the copy, the file,
    /// the checks. Returns the candidate beside the database.
    private func prepare(_ safety: SafetyCopy?) throws -> SafeInstall.Candidate {
        guard let safety, let main = safety.path(of: .main) else {
            throw AbathurError(.internal, request.database, "the safety copy lacks the database")
        }
        // With the service stopped and nothing holding the database, a -journal is hot: a
        // transaction was interrupted. (A running service's -journal is only in flight.)
        let journal = DatabaseFiles(request.database).journal
        if try FileStatus.of(journal) != nil {
            throw AbathurError(.refused, journal, "a hot rollback journal beside the database: a transaction was interrupted, and SQLite rolls it back the next time the database is opened read-write (with the service stopped: sqlite3 '\(request.database)' 'PRAGMA schema_version'); nothing was changed")
        }
        outcome.backup = try timeline.step("pre-migrate backup") {
            var backup = self.backup
            backup.kind = .manual
            backup.label = "pre-migrate"
            let done = try BackupJob(request: backup, events: timeline.events).run(directoryLocked: true)
            return (done.manifest.name, "\(done.path ?? done.manifest.name): verified, \(Bytes.describe(done.manifest.gz.bytes))")
        }
        let candidate = SafeFiles.tempPath(in: Paths.directory(of: request.database), tag: "migrate.db")
        temps += DatabaseFiles(candidate).all
        try timeline.step("copy the database") {
            _ = try SafeFiles.copy(main, toNew: candidate)
            if let wal = safety.path(of: .wal) { _ = try SafeFiles.copy(wal, toNew: DatabaseFiles(candidate).wal) }
            let settled = try DatabaseSwap.settle(candidate, busyTimeoutMs: request.busyTimeoutMs)
            return ((), "from the safety copy, beside the database; \(settled)")
        }
        try applyAndCheck(candidate)
        return SafeInstall.Candidate(path: candidate, sha256: try GzipFile.sha256(of: candidate).hex, rowCounts: rowsAfter, check: checkAfter)
    }

    /// The file on a copy, in one transaction, then every check; throws `checkFailed` (exit 3)
    /// when anything fails, the copy left as it was before the file.
    func applyAndCheck(_ copy: String) throws {
        let (after, diff) = try apply(copy)
        // The connection is closed: the copy is settled into one file (its -wal checkpointed
        // away), as the swap needs it and as the full checks read it.
        try timeline.step("settle the copy") { ((), try DatabaseSwap.settle(copy, busyTimeoutMs: request.busyTimeoutMs)) }
        try check(copy, after: after, diff: diff)
    }

    /// The file on the copy in one transaction, then the foreign-key audit through the same
    /// connection. Returns the schema after, and the diff.
    private func apply(_ copy: String) throws -> (SchemaSnapshot, SchemaDiff) {
        let connection: Connection
        do {
            connection = try Connection(path: copy, mode: .readWrite, busyTimeoutMs: request.busyTimeoutMs)
        } catch {
            throw AbathurError(error.kind, copy, "cannot open the copy: \(error.message)")
        }
        let before = try SchemaSnapshot.take(connection)
        try timeline.step("apply \(Paths.basename(script.path))") { () throws -> ((), String) in
            do {
                try connection.execute("PRAGMA foreign_keys = \(script.header.foreignKeys ? "ON" : "OFF")")
                try connection.execute("BEGIN IMMEDIATE")
            } catch let error as SQLiteError {
                throw AbathurError(error.kind, copy, "cannot start the migration: \(error.message)")
            }
            do {
                try connection.runScript(script.text, check: { statement in
                    if let refusal = MigrationScript.refusal(of: statement) {
                        self.outcome.failedStatement = statement
                        throw AbathurError(.checkFailed, script.path, "line \(statement.line): \(refusal): \(statement.display); nothing was changed")
                    }
                }, each: { self.outcome.statements.append($0) })
                // With foreign keys off (the 12-step change), SQLite checks nothing at COMMIT.
                try connection.execute("COMMIT")
            } catch let failure as ScriptFailure {
                try? connection.execute("ROLLBACK")
                outcome.failedStatement = failure.statement
                throw AbathurError(.checkFailed, script.path, "statement \(failure.index) (line \(failure.statement.line)) failed: \(failure.error.message): \(failure.statement.display); rolled back, nothing was changed")
            } catch let error as AbathurError {
                try? connection.execute("ROLLBACK")
                throw error
            } catch let error as SQLiteError {
                try? connection.execute("ROLLBACK")
                throw AbathurError(.checkFailed, script.path, "COMMIT failed: \(error.message); rolled back, nothing was changed")
            }
            let changed = outcome.statements.map(\.changes).reduce(0, +)
            return ((), "\(outcome.statements.count) statement(s), \(changed) row(s) changed, in one transaction (foreign_keys \(script.header.foreignKeys ? "on" : "off"))")
        }
        let after = try SchemaSnapshot.take(connection)
        rowsAfter = after.tables
        indexesAfter = after.indexes.count
        let diff = SchemaDiff(before: before, after: after)
        outcome.diff = diff
        let audit = try timeline.step("foreign keys") {
            let audit = try ForeignKeyAudit.run(connection)
            return (audit, audit.summary)
        }
        outcome.audit = audit
        guard audit.isClean else {
            throw AbathurError(.checkFailed, request.database, "the migrated copy fails the foreign-key check: \(audit.summary); nothing was changed")
        }
        return (after, diff)
    }

    /// The expected schema and the full checks on the settled copy.
    private func check(_ copy: String, after: SchemaSnapshot, diff: SchemaDiff) throws {
        try timeline.step("expected schema") {
            let tables = Set(after.tables.keys)
            let expected = expectTables ?? script.header.expectTables ?? configuredTables.filter { !diff.tablesRemoved.contains($0) }
            let missing = expected.filter { !tables.contains($0) }
            let present = (script.header.expectAbsent ?? []).filter { tables.contains($0) }
            let minIndexes = script.header.expectMinIndexes ?? request.check.expectation.minIndexes
            var problems: [String] = []
            if !missing.isEmpty { problems.append("missing table(s) \(missing.joined(separator: ", "))") }
            if !present.isEmpty { problems.append("table(s) still there that the file expects gone: \(present.joined(separator: ", "))") }
            if after.indexes.count < minIndexes {
                let from = script.header.expectMinIndexes == nil ? " (expect_min_indexes; a file that drops indexes says '-- expect-min-indexes: N' in its header)" : ""
                problems.append("\(after.indexes.count) indexes, expected at least \(minIndexes)\(from)")
            }
            guard problems.isEmpty else {
                throw AbathurError(.checkFailed, request.database, "the migrated copy is not the expected schema: \(problems.joined(separator: "; ")); nothing was changed")
            }
            return ((), "\(expected.count) expected table(s) present, \(after.indexes.count) indexes (at least \(minIndexes))")
        }
        // The full checks, with the schema the migration leads to.
        var options = request.check
        options.expectation.tables = Array(after.tables.keys).sorted().filter { table in
            (expectTables ?? script.header.expectTables ?? configuredTables).contains(table)
        }
        options.expectation.minIndexes = min(options.expectation.minIndexes, after.indexes.count)
        options.expectation.indexes = options.expectation.indexes.filter { after.indexes.contains($0) }
        checkAfter = options
        let check = try timeline.step("full checks") {
            let check = try DatabaseCheck.run(path: copy, options: options)
            return (check, check.failure.map { "\($0.name): \($0.detail)" } ?? "\(check.checks.count) checks passed")
        }
        outcome.checks = check.checks
        if let failed = check.failure {
            throw AbathurError(.checkFailed, request.database, "the migrated copy fails \(failed.name): \(failed.detail); nothing was changed")
        }
    }

    /// `--dry-run` and `--drill`: the file and the checks on a scratch copy in temp_dir, the
    /// service left running.
    private func rehearse() throws {
        let scratch = SafeFiles.tempPath(in: request.tempDir, tag: "migrate-dry-run.db")
        temps += DatabaseFiles(scratch).all
        try timeline.step("scratch copy") {
            let size = try SafetyCopy.size(of: request.database)
            try SpaceBudget.of(request.tempDir).require(size, for: "a scratch copy of \(request.database)")
            try FileDescriptor.createExclusive(scratch).close()
            let destination = try Connection(path: scratch, mode: .readWrite, busyTimeoutMs: request.busyTimeoutMs)
            try LiveReader.read(request.database, busyTimeoutMs: request.busyTimeoutMs, tempDirectory: request.tempDir) { source in
                let copy = try OnlineBackup(from: source, to: destination)
                while try !copy.step(pages: -1) {}
            }
            return ((), "\(Bytes.describe(size)) into \(request.tempDir), while the service runs")
        }
        try applyAndCheck(scratch)
        outcome.result = "checked"
        // What the service would be down for: two copies (the safety copy and the copy the
        // file runs on), the pre-migrate backup (as long as the newest backup took), the file
        // and the checks.
        let took = { (name: String) in self.timeline.steps.filter { $0.name == name || (name == "apply" && $0.name.hasPrefix("apply ")) }.map(\.durationMs).reduce(0, +) }
        let newestBackup = (try? Catalog.scan(request.backupDir))?.complete.first?.manifest?.durationsMs["total"] ?? 0
        outcome.unitsStoppedMs = 2 * took("scratch copy") + newestBackup + took("apply") + took("foreign keys") + took("expected schema") + took("full checks")
        removedExpectedTables()
    }

    /// From "stop units" to the end of "start units", when both ran.
    func unitsStopped() -> Int64? {
        guard let stop = timeline.steps.first(where: { $0.name == "stop units" }),
              let start = timeline.steps.last(where: { $0.name == "start units" }) else { return nil }
        return Int64(((start.startedUnix - stop.startedUnix) * 1000).rounded()) + start.durationMs
    }

    /// Tables the migration removed that `expect_tables` still lists: the nightly backups would
    /// fail their schema check until it is changed.
    func removedExpectedTables() {
        guard let diff = outcome.diff else { return }
        let configuredMin = request.check.expectation.minIndexes
        if let left = indexesAfter, left < configuredMin {
            outcome.newExpectMinIndexes = left
            outcome.warnings.append("the migration leaves \(left) indexes, fewer than expect_min_indexes = \(configuredMin): set 'expect_min_indexes = \(left)' in the config, or the nightly backups will fail their schema check")
        }
        let gone = configuredTables.filter { diff.tablesRemoved.contains($0) }
        guard !gone.isEmpty else { return }
        let remaining = configuredTables.filter { !gone.contains($0) }.joined(separator: ",")
        outcome.newExpectTables = remaining
        outcome.warnings.append("the migration removed \(gone.joined(separator: ", ")), which expect_tables lists: set 'expect_tables = \(remaining)' in the config, or the nightly backups will fail their schema check")
    }
}

extension MigrationJob {
    /// The incident record of a real migration (applied, refused or rolled back):
    /// `INCIDENT_DIR/STAMP-migrate.json` and `.md`, with the timeline and the schema diff.
    public func writeRecord(exitCode: ExitCode, error: AbathurError?) throws -> String {
        let o = outcome
        return try IncidentRecord.write(kind: "migrate", started: o.steps.first?.startedUnix, outcome: o, exitCode: exitCode, error: error,
                                        into: request.incidentDir, toolVersion: request.toolVersion) { json in
            var text = "# Incident: abathur schema migration, \(o.steps.first?.started ?? Clock.iso8601(Int64(Clock.now())))\n\n"
            text += "- Database: `\(o.database)`\n- Migration: `\(o.script)`\n"
            text += "- Result: **\(o.result)** (exit \(exitCode.rawValue))\n"
            if let backup = o.backup { text += "- Restore point: `\(backup)` (abathur-restore \(backup) goes back)\n" }
            if let ms = o.unitsStoppedMs { text += "- Units stopped for: \(Timeline.seconds(ms))\n" }
            text += "- Details: `\(json)`\n\n## Timeline\n\nAll times UTC.\n\n"
            for step in o.steps {
                let time = String(step.started.dropFirst(11).prefix(8))
                text += "- \(time) \(step.name): \(step.ok ? "" : "**FAILED** ")\(step.detail) (\(Timeline.seconds(step.durationMs)))\n"
            }
            text += "\n## Schema diff\n\n\(o.diff?.summary ?? "not reached")\n"
            if let failed = o.failedStatement { text += "\nFailed statement, line \(failed.line): `\(failed.sql)`\n" }
            text += "\n## Resolution\n\n"
            text += o.result == "migrated" ? "The migrated database is live.\n" : "Nothing live was changed: \(error?.description ?? "see the timeline").\n"
            if let copy = o.safetyCopy { text += "\nThe database as it was before (raw db, -wal, -shm): `\(copy)`.\n" }
            if !o.warnings.isEmpty { text += "\nWarnings:\n" + o.warnings.map { "- \($0)\n" }.joined() }
            return text
        }
    }
}
