#if canImport(Glibc)
import Glibc
#endif

/// One restore (or fresh start), start to finish, so that it can never make things worse
/// (SPEC.md, `abathur-restore`; issue 3):
///
/// lock → locate the source → decompress beside the database → check the candidate → safe
/// install (`SafeInstall`: stop the units, prove nothing holds the database, safety copy,
/// swap, post-check, start, health check; a failed post-check or health check rolls back to
/// the safety copy and exits 3) → incident record.
///
/// Everything before the swap changes nothing live: a failure there removes the candidate,
/// starts the units it stopped, and leaves the database, its `-wal`/`-shm` and every backup
/// byte-identical.
public final class RestoreJob {
    public enum Kind: String, Sendable, Encodable { case restore, reinit }

    public struct Outcome: Sendable, Encodable {
        public var kind: Kind
        public var database: String
        public var source: ChosenSource?
        public var result = InstallResult.failed
        public var candidate: CandidateFacts?
        public var holders: [Holder] = []
        public var safetyCopy: SafetyCopy?
        public var swap: DatabaseSwap.Report?
        public var health: HealthCheck.Outcome?
        public var rolledBack = false
        public var rollbackSafetyCopy: SafetyCopy?
        public var steps: [Timeline.Step] = []
        public var totalMs: Int64 = 0
        public var warnings: [String] = []
        public var incidentRecord: String?
        /// Why the incident record could not be written, if it could not.
        public var incidentRecordProblem: String?
        /// Safety copies, aside directories and incident records of earlier runs removed at the
        /// end of a successful one (`safety_keep`, `safety_max_age`).
        public var pruned: [String] = []
    }

    public struct CandidateFacts: Sendable, Encodable {
        public var sha256: String
        public var bytes: Int64
        public var userVersion: Int64
        public var applicationId: Int64
        public var rowCounts: [String: Int64]
        public var checks: [Manifest.Check]
    }

    let request: RestoreRequest
    public let timeline: Timeline
    private var temps: [String] = []
    /// The backup directory's and the database's locks, held from the first step until the
    /// incident record is written.
    private var locks: [FileLock] = []
    /// Where this run keeps its safety copies (`RestoreRequest.safetyRoot`), decided once, at
    /// the lock step.
    private var safetyRoot: String
    public private(set) var outcome: Outcome

    /// `events` hears of each step as it ends (the timeline), the decompression's progress
    /// and the health check's attempts.
    public init(request: RestoreRequest, events: EventSink = .ignore, kind: Kind) {
        self.request = request
        timeline = Timeline(events: events)
        outcome = Outcome(kind: kind, database: request.database)
        safetyRoot = request.safetyRoot
    }

    deinit {
        for path in temps { SafeFiles.removeQuietly(path) }
    }

    /// Runs the restore or the fresh start. The outcome is kept (for the incident record and
    /// `--json`) whether it succeeds or throws.
    public func run() throws {
        defer { locks.removeAll() }
        var failure: AbathurError?
        do {
            try runSteps()
        } catch let error as AbathurError {
            failure = error
        } catch {
            failure = AbathurError.internal("unexpected error: \(error)")
        }
        // Anything refused before the swap changed nothing.
        if let failure, outcome.result == .failed, outcome.swap == nil { outcome.result = InstallResult.beforeSwap(failure) }
        outcome.steps = timeline.steps
        outcome.totalMs = timeline.totalMs
        // Every attempt that got the locks leaves an incident record, written while they are
        // still held, so the incident directory's stale temp files can be swept first.
        if !locks.isEmpty {
            do {
                try SafeFiles.ensureDirectory(request.incidentDir)
                SafeFiles.sweepTemps(in: request.incidentDir)
                outcome.incidentRecord = try IncidentRecord.write(outcome, exitCode: failure?.exitCode ?? .success, error: failure,
                                                                  into: request.incidentDir, toolVersion: request.toolVersion)
            } catch {
                outcome.incidentRecordProblem = "\(error)"
            }
            // After a success only, still under the locks: what a failed run leaves is evidence.
            if failure == nil {
                do {
                    outcome.pruned = try request.safetyRetention.prune(SafetyRetention.Places(
                        safetyRoots: [safetyRoot], databaseDirectory: Paths.directory(of: request.database), incidentDirectory: request.incidentDir))
                } catch {
                    outcome.warnings.append("pruning old safety copies, aside directories and incident records: \(error)")
                }
            }
        }
        if let failure { throw failure }
    }

    /// lock → locate → decompress → check → safe install (or, for `--reinit`, lock → init
    /// command → check → safe install).
    func runSteps() throws {
        try refuseUnsafeTarget()
        locks = try lock()
        let candidate: (path: String, sha256: String)
        switch outcome.kind {
        case .restore:
            let source = try locate()
            let written = try decompress(source)
            // The candidate reaches the disk while it is checked (both read the page cache);
            // it must be there before the swap.
            let syncStart = Timeline.Start()
            let syncing = try BackgroundWork { try SafeFiles.syncFile(written.path) }
            try checkCandidate(written.path, sha256: written.sha256, bytes: written.bytes, source: source.path ?? "stdin",
                               manifest: source.manifest,
                               damaged: written.gzSHA256 == nil && source.manifest == nil ? .corrupt : .damagedBackup)
            do {
                try syncing.join()
                timeline.record("sync candidate", since: syncStart, until: syncing.finished, ok: true, detail: "fsynced beside the check")
            } catch {
                timeline.record("sync candidate", since: syncStart, until: syncing.finished, ok: false, detail: "\(error)")
                throw error
            }
            candidate = (written.path, written.sha256)
        case .reinit:
            try preflight(needed: 0)
            candidate = try freshDatabase(in: Paths.directory(of: request.database))
        }
        try install(candidate.path, sha256: candidate.sha256)
    }

    /// The database is replaced by a rename: it must be a regular file (or missing) in a
    /// directory that exists.
    func refuseUnsafeTarget() throws {
        let database = request.database
        let directory = Paths.directory(of: database)
        if let status = try FileStatus.of(database), !status.isRegular {
            throw AbathurError(.unsafePath, database, status.isSymlink
                ? "is a symlink; give its target with --db, so the swap replaces the file and not the link"
                : "not a regular file")
        }
        var directoryStatus = stat()
        guard stat(directory, &directoryStatus) == 0, directoryStatus.st_mode & S_IFMT == S_IFDIR else {
            throw AbathurError(.usage, directory, "no such directory")
        }
    }

    /// The backup directory's and the database's locks; under them, an interrupted publish is
    /// finished and stale temp files are swept.
    func lock() throws -> [FileLock] {
        let database = request.database
        return try timeline.step("lock") {
            // A read-only backup directory (a DR share) is only read: no lock, nothing written
            // there; the safety copy goes beside the database instead.
            let readOnly = FileLock.readOnlyReason(request.backupDir)
            var locks: [FileLock] = []
            var recovered = ""
            if readOnly == nil {
                try SafeFiles.ensureDirectory(request.backupDir)
                locks.append(try FileLock.acquire(Paths.join(request.backupDir, Catalog.lockName), wait: request.lockWait))
            }
            locks.append(try FileLock.acquire(FileLock.path(forDatabase: database), wait: request.lockWait))
            var swept: [String] = []
            if readOnly == nil {
                let recovery = Catalog.recover(request.backupDir)
                outcome.warnings += recovery.problems
                swept += recovery.swept
                if !recovery.finished.isEmpty { recovered = "; finished the interrupted publish of \(recovery.finished.joined(separator: ", "))" }
            }
            safetyRoot = request.safetyRoot(backupDirReadOnly: readOnly != nil)
            swept += SafeFiles.sweepTemps(in: Paths.directory(of: database), directories: false)
            let what = readOnly.map { "database locked; backup directory read-only (\($0)): not locked, safety copies go to \(safetyRoot)" }
                ?? "backup directory and database locked"
            return (locks, what + (swept.isEmpty ? "" : "; swept \(swept.count) stale temp file(s)") + recovered)
        }
    }

    /// The backup, file or stream to restore; never the database itself.
    func locate() throws -> ChosenSource {
        let source = try ChosenSource.locate(request, on: timeline)
        outcome.source = source
        if let path = source.path {
            var a = stat(), b = stat()
            if stat(path, &a) == 0, stat(request.database, &b) == 0, a.st_dev == b.st_dev, a.st_ino == b.st_ino {
                throw AbathurError(.usage, path, "is the database itself; give a backup or another copy")
            }
        }
        return source
    }

    /// The candidate, beside the database (so the swap is a rename), after the space
    /// preflight; bounded as the bytes arrive by the manifest's size, else by what the
    /// preflight allows (gzip's ISIZE can lie, stdin has no size): a bomb stops there.
    func decompress(_ source: ChosenSource) throws -> Candidate {
        try preflight(needed: try Candidate.estimatedSize(of: source))
        let limit = try source.manifest.map(InflationLimit.manifest)
            ?? RestorePlan.Space.inflationLimit(for: request, safetyRoot: safetyRoot)
        let written = try timeline.step("decompress") {
            let written = try Candidate.write(from: source, into: Paths.directory(of: request.database), force: request.force,
                                              sync: false, limit: limit) { done in
                self.timeline.events.progress("decompress", done: done, total: source.manifest?.gz.bytes ?? 0)
            }
            let hash = source.manifest == nil ? "no manifest to compare with" : "sha256 matches the manifest"
            return (written, "\(written.bytes) bytes into \(Paths.basename(written.path)); \(hash)" + (written.note.map { "; \($0)" } ?? ""))
        }
        temps.append(written.path)
        return written
    }

    /// Exit 6 before anything is written (`RestorePlan.Space.needed` says what is needed where).
    func preflight(needed restoredBytes: Int64) throws {
        if let shortage = try RestorePlan.Space.needed(for: request, restoredBytes: restoredBytes, safetyRoot: safetyRoot)
            .compactMap(\.shortage).first {
            throw shortage
        }
    }

    func checkCandidate(_ path: String, sha256: String, bytes: Int64, source: String, manifest: Manifest?,
                        damaged: AbathurError.Kind = .damagedBackup) throws {
        let checked = try timeline.step("check candidate") {
            let checked = try CandidateCheck.run(path, source: source, manifest: manifest, live: request.database, request: request,
                                                 damaged: damaged)
            return (checked, checked.summary + (manifest == nil ? "" : "; schema and row counts match the manifest"))
        }
        outcome.warnings += checked.warnings
        let report = checked.report
        outcome.candidate = CandidateFacts(sha256: sha256, bytes: bytes, userVersion: report.userVersion,
                                           applicationId: report.applicationId, rowCounts: report.rowCounts, checks: report.checks)
    }

    /// `--reinit`: the init command builds a fresh database at a temp path beside the live one
    /// (`ABATHUR_DB` tells it where), which is then checked and installed like a backup.
    func freshDatabase(in directory: String) throws -> (path: String, sha256: String) {
        guard !request.initCommand.isEmpty else {
            throw AbathurError.usage("no init_command is configured: set init_command in the config file (a command that creates an empty abathur database at $ABATHUR_DB)")
        }
        let path = SafeFiles.tempPath(in: directory, tag: "reinit.db")
        temps += DatabaseFiles(path).all
        try timeline.step("init command") {
            let outcome = try Subprocess.run(request.initCommand, environment: ["ABATHUR_DB": path], timeout: 600)
            guard outcome.succeeded else {
                throw AbathurError(.checkFailed, request.initCommand[0], "init command failed (\(outcome.timedOut ? "timed out" : "exit \(outcome.status)"))\(outcome.lastLine.isEmpty ? "" : ": \(outcome.lastLine)")")
            }
            guard try FileStatus.of(path)?.isRegular == true else {
                throw AbathurError(.checkFailed, request.initCommand[0], "init command exited 0 but created no database at $ABATHUR_DB")
            }
            return ((), "\(request.initCommand.joined(separator: " ")) created a database")
        }
        _ = try DatabaseSwap.settle(path, busyTimeoutMs: request.busyTimeoutMs)
        let (sha, bytes) = try GzipFile.sha256(of: path)
        try checkCandidate(path, sha256: sha, bytes: bytes, source: "the fresh database", manifest: nil)
        return (path, sha)
    }

    /// The safe install of the checked candidate (`SafeInstall`); what it did goes into the
    /// outcome, and a rollback or failure is thrown as the run's one error.
    func install(_ candidate: String, sha256: String) throws {
        let policy = SafeInstall.Policy(database: request.database, units: Units(request.services), health: request.health,
                                        safetyRoot: safetyRoot, tag: outcome.kind.rawValue, force: request.force,
                                        busyTimeoutMs: request.busyTimeoutMs, check: request.check)
        let install = SafeInstall(policy: policy, timeline: timeline)
        let result = install.install(SafeInstall.Candidate(path: candidate, sha256: sha256, rowCounts: outcome.candidate?.rowCounts))
        let report = install.report
        if report.swapped { temps.removeAll { $0 == candidate } }
        outcome.result = result.result
        outcome.holders = report.holders
        outcome.safetyCopy = report.safetyCopy
        outcome.swap = report.swap
        outcome.health = report.health
        outcome.rollbackSafetyCopy = report.rollbackSafetyCopy
        outcome.warnings += report.warnings
        switch result {
        case .installed:
            return
        case .rolledBack(_, let why):
            outcome.rolledBack = true
            let original = report.safetyCopy.map { "the database as it was (safety copy \($0.directory))" } ?? "no database, as before"
            throw AbathurError(.checkFailed, request.database, "restore rolled back: \(why); \(request.database) holds \(original)")
        case .refused(let why), .failed(_, let why):
            throw why
        }
    }
}
