#if canImport(Glibc)
import Glibc
#endif

/// One restore (or fresh start), start to finish, so that it can never make things worse
/// (SPEC.md, `abathur-restore`; issue 3):
///
/// lock → locate the source → decompress beside the database → check the candidate → stop
/// the units → prove nothing holds the database → safety copy → swap (`DatabaseSwap`) →
/// post-checks → start the units → health check; a failed post-check or health check rolls
/// back to the safety copy through the same swap, starts the units, and exits 3.
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
        /// restored, rolled back, refused, failed
        public var result = "failed"
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
    let console: Console
    public let timeline: Timeline
    let units: Units
    private var temps: [String] = []
    /// The backup directory's and the database's locks, held from the first step until the
    /// incident record is written.
    private var locks: [FileLock] = []
    public private(set) var outcome: Outcome

    public init(request: RestoreRequest, console: Console, kind: Kind) {
        self.request = request
        self.console = console
        timeline = Timeline(console: console)
        units = Units(request.services)
        outcome = Outcome(kind: kind, database: request.database)
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
        if let failure, outcome.result == "failed", failure.code == .refused, outcome.swap == nil { outcome.result = "refused" }
        outcome.steps = timeline.steps
        outcome.totalMs = timeline.totalMs
        // Every attempt that got the locks leaves an incident record, written while they are
        // still held, so the incident directory's stale temp files can be swept first.
        if !locks.isEmpty {
            do {
                try SafeFiles.ensureDirectory(request.incidentDir)
                _ = try SafeFiles.sweepTemps(in: request.incidentDir)
                outcome.incidentRecord = try IncidentRecord.write(outcome, exitCode: failure?.code ?? .success, error: failure,
                                                                  into: request.incidentDir, toolVersion: request.toolVersion)
            } catch {
                outcome.incidentRecordProblem = "\(error)"
            }
        }
        if let failure { throw failure }
    }

    func runSteps() throws {
        let database = request.database
        let directory = Paths.directory(of: database)
        if let status = try FileStatus.of(database), !status.isRegular {
            throw AbathurError(.refused, database, status.isSymlink
                ? "is a symlink; give its target with --db, so the swap replaces the file and not the link"
                : "not a regular file")
        }
        var directoryStatus = stat()
        guard stat(directory, &directoryStatus) == 0, directoryStatus.st_mode & S_IFMT == S_IFDIR else {
            throw AbathurError(.usage, directory, "no such directory")
        }

        locks = try timeline.step("lock") {
            try SafeFiles.ensureDirectory(request.backupDir)
            let backupLock = try FileLock.acquire(Paths.join(request.backupDir, Catalog.lockName), wait: request.lockWait)
            let databaseLock = try FileLock.acquire(FileLock.path(forDatabase: database), wait: request.lockWait)
            let swept = try SafeFiles.sweepTemps(in: directory)
            return ([backupLock, databaseLock], "backup directory and database locked" + (swept.isEmpty ? "" : "; swept \(swept.count) stale temp file(s)"))
        }

        let candidate: String
        let expectedSHA: String
        switch outcome.kind {
        case .restore:
            let source = try timeline.step("locate") {
                let source = try ChosenSource.choose(request.source, backupDir: request.backupDir, force: request.force)
                let created = source.manifest.map { ", created \($0.created)" } ?? ""
                return (source, "\(source.path ?? "stdin")\(created)")
            }
            outcome.source = source
            try preflight(needed: source.manifest?.database.bytes ?? 0)
            let written = try timeline.step("decompress") {
                let written = try Candidate.write(from: source, into: directory, force: request.force) { done in
                    self.console.progress("decompress", done: done, total: source.manifest?.gz.bytes ?? 0)
                }
                console.endProgress()
                let hash = source.manifest == nil ? "no manifest to compare with" : "sha256 matches the manifest"
                return (written, "\(written.bytes) bytes into \(Paths.basename(written.path)); \(hash)")
            }
            temps.append(written.path)
            candidate = written.path
            expectedSHA = written.sha256
            try checkCandidate(candidate, sha256: written.sha256, bytes: written.bytes, source: source.path ?? "stdin", manifest: source.manifest)
        case .reinit:
            try preflight(needed: 0)
            (candidate, expectedSHA) = try freshDatabase(in: directory)
        }
        try install(candidate, sha256: expectedSHA)
    }

    /// The candidate is written beside the database and the safety copy beside the backups:
    /// both must fit before anything is written (exit 6).
    func preflight(needed candidateBytes: Int64) throws {
        let directory = Paths.directory(of: request.database)
        let free = try SafeFiles.freeBytes(at: directory)
        if free < candidateBytes + (1 << 20) {
            throw AbathurError(.noSpace, directory, "\(free) bytes free, the restored database needs \(candidateBytes + (1 << 20))")
        }
        let safety = try SafetyCopy.size(of: request.database)
        let backupFree = try SafeFiles.freeBytes(at: request.backupDir)
        if safety > 0 && backupFree < safety + (1 << 20) {
            throw AbathurError(.noSpace, request.backupDir, "\(backupFree) bytes free, the safety copy of the current database needs \(safety + (1 << 20))")
        }
    }

    func checkCandidate(_ path: String, sha256: String, bytes: Int64, source: String, manifest: Manifest?) throws {
        let checked = try timeline.step("check candidate") {
            let checked = try CandidateCheck.run(path, source: source, manifest: manifest, live: request.database, request: request)
            return (checked, checked.summary + (manifest == nil ? "" : "; schema and row counts match the manifest"))
        }
        outcome.warnings += checked.warnings
        let report = checked.report
        outcome.candidate = CandidateFacts(sha256: sha256, bytes: bytes, userVersion: report.userVersion,
                                           applicationId: report.applicationId, rowCounts: report.rowCounts, checks: report.checks)
    }

    /// `--reinit`: the init command builds a fresh database at a temp path beside the live one
    /// (`ABATHUR_DB` tells it where), which is then checked and installed like a backup.
    func freshDatabase(in directory: String) throws -> (String, String) {
        guard !request.initCommand.isEmpty else {
            throw AbathurError.usage("no init_command is configured: set init_command in the config file (a command that creates an empty abathur database at $ABATHUR_DB)")
        }
        let path = SafeFiles.tempPath(in: directory, tag: "reinit.db")
        temps += [path, path + "-wal", path + "-shm", path + "-journal"]
        try timeline.step("init command") {
            let outcome = try Subprocess.run(request.initCommand, environment: ["ABATHUR_DB": path], timeout: 600)
            guard outcome.succeeded else {
                throw AbathurError(.verificationFailed, request.initCommand[0], "init command failed (\(outcome.timedOut ? "timed out" : "exit \(outcome.status)"))\(outcome.lastLine.isEmpty ? "" : ": \(outcome.lastLine)")")
            }
            guard try FileStatus.of(path)?.isRegular == true else {
                throw AbathurError(.verificationFailed, request.initCommand[0], "init command exited 0 but created no database at $ABATHUR_DB")
            }
            return ((), "\(request.initCommand.joined(separator: " ")) created a database")
        }
        _ = try DatabaseSwap.settle(path, busyTimeoutMs: request.busyTimeoutMs)
        let (sha, bytes) = try GzipFile.sha256(of: path)
        try checkCandidate(path, sha256: sha, bytes: bytes, source: "the fresh database", manifest: nil)
        return (path, sha)
    }

    /// Steps 4 to 8: stop, prove, safety copy, swap, post-checks, start, health; rollback.
    func install(_ candidate: String, sha256: String) throws {
        let database = request.database
        let managesUnits = !units.names.isEmpty
        let safety: SafetyCopy?
        do {
            if managesUnits { try timeline.step("stop units") { ((), try units.stop()) } }
            try proveNothingHolds("prove nothing holds the database")
            safety = try timeline.step("safety copy") {
                let copy = try SafetyCopy.make(of: database, into: request.safetyRoot, tag: outcome.kind.rawValue)
                let detail = copy.map { c in "\(c.files.map(\.name).joined(separator: ", ")) into \(c.directory)" } ?? "no database at \(database): nothing to copy"
                return (copy, detail)
            }
            outcome.safetyCopy = safety
        } catch {
            if managesUnits { startUnitsAfterFailure() }
            throw error
        }

        outcome.swap = try timeline.step("swap") {
            let report = try DatabaseSwap.install(candidate, over: database, busyTimeoutMs: request.busyTimeoutMs)
            temps.removeAll { $0 == candidate }
            let aside = report.movedAside.isEmpty ? "" : "; moved aside \(report.movedAside.map(Paths.basename).joined(separator: ", ")) into \(report.asideDirectory!)"
            return (report, "\(report.settled)\(aside); candidate renamed to \(database)")
        }

        do {
            try timeline.step("post-check") { ((), try postCheck(database, sha256: sha256)) }
            if managesUnits { try timeline.step("start units") { ((), try units.start()) } }
            if let health = request.health, !request.isAlternateTarget {
                let result = try timeline.step("health check") {
                    let result = health.run { self.console.info($0) }
                    guard result.healthy else {
                        throw AbathurError(.verificationFailed, health.target, "unhealthy after \(result.attempts) attempt(s): \(result.detail)")
                    }
                    return (result, "\(health.target): \(result.detail) (attempt \(result.attempts))")
                }
                outcome.health = result
            }
            outcome.result = "restored"
        } catch let failure {
            if outcome.health == nil, case .verificationFailed? = (failure as? AbathurError)?.code, let health = request.health {
                outcome.health = HealthCheck.Outcome(healthy: false, attempts: health.retries, detail: (failure as? AbathurError)?.message ?? "\(failure)", target: health.target)
            }
            do {
                try rollback(to: safety)
            } catch {
                outcome.result = "failed"
                throw AbathurError(.verificationFailed, database,
                                   "\(failure); rolling back failed too: \(error). The raw files of the database as it was are in \(safety?.directory ?? "(no safety copy)")")
            }
            outcome.result = "rolled back"
            outcome.rolledBack = true
            let original = safety.map { "the database as it was (safety copy \($0.directory))" } ?? "no database, as before"
            throw AbathurError(.verificationFailed, database, "restore rolled back: \(failure); \(database) holds \(original)")
        }
    }

    func proveNothingHolds(_ name: String) throws {
        let report = try timeline.step(name) {
            let report = try Holders.check(request.database)
            let detail = report.holders.isEmpty ? "no process has it open or locked; SQLite probe: \(report.probe)"
                : report.holders.map(\.description).joined(separator: "; ")
            return (report, detail)
        }
        outcome.holders = report.holders
        guard report.holders.isEmpty else {
            let who = report.holders.map(\.description).joined(separator: "; ")
            if request.force {
                outcome.warnings.append("--force: swapping although \(who)")
                return
            }
            throw AbathurError(.refused, request.database, "still in use: \(who); nothing was changed (stop it, or add it to services)")
        }
    }

    func startUnitsAfterFailure() {
        do {
            try timeline.step("start units") { ((), try units.start()) }
        } catch {
            console.error(AbathurError(.refused, nil, "could not start the units again: \(error)"))
        }
    }

    /// The restored file must be exactly the checked candidate, alone (no companion files),
    /// and open as a healthy database.
    func postCheck(_ database: String, sha256: String) throws -> String {
        for suffix in DatabaseSwap.companions where try FileStatus.of(database + suffix) != nil {
            throw AbathurError(.verificationFailed, database + suffix, "appeared beside the restored database")
        }
        let (hex, _) = try GzipFile.sha256(of: database)
        guard hex == sha256 else {
            throw AbathurError(.verificationFailed, database, "reads back with sha256 \(hex), the candidate had \(sha256)")
        }
        // The same bytes passed integrity_check and foreign_key_check as the candidate; what
        // is left to prove is that SQLite opens them at this path with the schema and rows.
        var options = request.check
        options.structural = false
        let report = try DatabaseCheck.run(path: database, options: options)
        if let failed = report.failure { throw AbathurError(.verificationFailed, database, "\(failed.name) failed: \(failed.detail)") }
        if let expected = outcome.candidate?.rowCounts, report.rowCounts != expected {
            throw AbathurError(.verificationFailed, database, "row counts differ from the candidate's")
        }
        return "sha256 matches the checked candidate; SQLite opens it: schema ok, \(report.rowCounts.values.reduce(0, +)) rows as expected"
    }

    /// Step 8: the database as it was, back through the same swap: stop the units again,
    /// prove nothing holds it, keep a safety copy of the restored one, rebuild the old
    /// database from the safety copy as one settled file, swap, check, start.
    func rollback(to safety: SafetyCopy?) throws {
        let database = request.database
        let directory = Paths.directory(of: database)
        let managesUnits = !units.names.isEmpty
        if managesUnits { try timeline.step("rollback: stop units") { ((), try units.stop()) } }
        do {
            try proveNothingHolds("rollback: prove nothing holds the database")
            outcome.rollbackSafetyCopy = try timeline.step("rollback: safety copy") {
                let copy = try SafetyCopy.make(of: database, into: request.safetyRoot, tag: "rolled-back-\(outcome.kind.rawValue)")
                return (copy, copy.map { "the restored database into \($0.directory)" } ?? "nothing to copy")
            }
            if let safety, let old = safety.path(of: "") {
                let (candidate, sha) = try timeline.step("rollback: prepare") {
                    let path = SafeFiles.tempPath(in: directory, tag: "rollback.db")
                    temps += [path, path + "-wal", path + "-shm", path + "-journal"]
                    for suffix in ["", "-wal", "-journal"] {
                        guard let source = suffix.isEmpty ? old : safety.path(of: suffix) else { continue }
                        let output = try FileDescriptor.createExclusive(path + suffix)
                        try FileDescriptor.openForReading(source).forEachChunk { try output.write($0) }
                        try output.sync()
                        try output.close()
                    }
                    let settled = try DatabaseSwap.settle(path, busyTimeoutMs: request.busyTimeoutMs)
                    for suffix in DatabaseSwap.companions { SafeFiles.removeQuietly(path + suffix) }
                    let (sha, bytes) = try GzipFile.sha256(of: path)
                    return ((path, sha), "\(bytes) bytes rebuilt from \(safety.directory); \(settled)")
                }
                try timeline.step("rollback: swap") {
                    let report = try DatabaseSwap.install(candidate, over: database, busyTimeoutMs: request.busyTimeoutMs)
                    temps.removeAll { $0 == candidate }
                    return ((), "\(report.settled); old database renamed to \(database)")
                }
                try timeline.step("rollback: post-check") {
                    let (hex, _) = try GzipFile.sha256(of: database)
                    guard hex == sha else { throw AbathurError(.ioError, database, "reads back with sha256 \(hex), expected \(sha)") }
                    return ((), "sha256 matches the database as it was")
                }
            } else {
                try timeline.step("rollback: move the restored database aside") {
                    let report = try DatabaseSwap.moveAside(database, busyTimeoutMs: request.busyTimeoutMs)
                    return ((), "there was no database before; moved into \(report)")
                }
            }
        } catch {
            if managesUnits { startUnitsAfterFailure() }
            throw error
        }
        if managesUnits { try timeline.step("rollback: start units") { ((), try units.start()) } }
    }
}
