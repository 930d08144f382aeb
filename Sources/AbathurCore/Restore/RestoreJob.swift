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
/// byte-identical. A swap that fails before its rename leaves the old database (settled)
/// and starts the units; one that fails after it goes on to the post-check and rollback.
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
    let console: Console
    public let timeline: Timeline
    let units: Units
    private var temps: [String] = []
    /// The backup directory's and the database's locks, held from the first step until the
    /// incident record is written.
    private var locks: [FileLock] = []
    /// Where this run keeps its safety copies (`RestoreRequest.safetyRoot`), decided once, at
    /// the lock step.
    private var safetyRoot: String
    public private(set) var outcome: Outcome

    public init(request: RestoreRequest, console: Console, kind: Kind) {
        self.request = request
        self.console = console
        timeline = Timeline(console: console)
        units = Units(request.services)
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
        if let failure, outcome.result == "failed", failure.exitCode == .refused, outcome.swap == nil { outcome.result = "refused" }
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

    func runSteps() throws {
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

        locks = try timeline.step("lock") {
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
            swept += SafeFiles.sweepTemps(in: directory, directories: false)
            let what = readOnly.map { "database locked; backup directory read-only (\($0)): not locked, safety copies go to \(safetyRoot)" }
                ?? "backup directory and database locked"
            return (locks, what + (swept.isEmpty ? "" : "; swept \(swept.count) stale temp file(s)") + recovered)
        }

        let candidate: String
        let expectedSHA: String
        switch outcome.kind {
        case .restore:
            let source = try ChosenSource.locate(request, on: timeline)
            outcome.source = source
            if let path = source.path {
                var a = stat(), b = stat()
                if stat(path, &a) == 0, stat(database, &b) == 0, a.st_dev == b.st_dev, a.st_ino == b.st_ino {
                    throw AbathurError(.usage, path, "is the database itself; give a backup or another copy")
                }
            }
            try preflight(needed: try Candidate.estimatedSize(of: source))
            // Bounded as the bytes arrive: by the manifest's size, else by what the preflight
            // allows (gzip's ISIZE can lie, stdin has no size): a bomb stops there.
            let limit = try source.manifest.map(InflationLimit.manifest)
                ?? RestorePlan.Space.inflationLimit(for: request, safetyRoot: safetyRoot)
            let written = try timeline.step("decompress") {
                let written = try Candidate.write(from: source, into: directory, force: request.force, limit: limit) { done in
                    self.console.progress("decompress", done: done, total: source.manifest?.gz.bytes ?? 0)
                }
                console.endProgress()
                let hash = source.manifest == nil ? "no manifest to compare with" : "sha256 matches the manifest"
                return (written, "\(written.bytes) bytes into \(Paths.basename(written.path)); \(hash)" + (written.note.map { "; \($0)" } ?? ""))
            }
            temps.append(written.path)
            candidate = written.path
            expectedSHA = written.sha256
            try checkCandidate(candidate, sha256: written.sha256, bytes: written.bytes, source: source.path ?? "stdin", manifest: source.manifest,
                               damaged: written.gzSHA256 == nil && source.manifest == nil ? .corrupt : .damagedBackup)
        case .reinit:
            try preflight(needed: 0)
            (candidate, expectedSHA) = try freshDatabase(in: directory)
        }
        try install(candidate, sha256: expectedSHA)
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
    func freshDatabase(in directory: String) throws -> (String, String) {
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

    /// Steps 4 to 8: stop, prove, safety copy, swap, post-checks, start, health; rollback.
    /// SIGINT, SIGTERM and SIGHUP are ignored from the moment the units stop until they run
    /// again: a dropped SSH session must not leave the service down halfway.
    func install(_ candidate: String, sha256: String) throws {
        try Signals.ignoringTermination { try installShielded(candidate, sha256: sha256) }
    }

    private func installShielded(_ candidate: String, sha256: String) throws {
        let database = request.database
        let managesUnits = !units.names.isEmpty
        let safety: SafetyCopy?
        let candidateStatus = try FileStatus.of(candidate)
        do {
            if managesUnits { try timeline.step("stop units") { ((), try units.stop()) } }
            try proveNothingHolds("prove nothing holds the database")
            safety = try timeline.step("safety copy") {
                let copy = try SafetyCopy.make(of: database, into: safetyRoot, tag: outcome.kind.rawValue)
                let detail = copy.map { c in "\(c.files.map(\.name).joined(separator: ", ")) into \(c.directory)" } ?? "no database at \(database): nothing to copy"
                return (copy, detail)
            }
            outcome.safetyCopy = safety
            // The settle before the swap lets SQLite's recovery drop what a damaged -wal hides
            // (FACTS.md 10); the raw files are in the safety copy, and the operator is told.
            let wal = DatabaseFiles(database).wal
            if let safety, try FileStatus.of(wal)?.isRegular == true, let loss = try WALInspection.inspectConfirmed(wal).lossDescription {
                outcome.warnings.append("\(database)-wal: \(loss); the old database as SQLite reads it lacks them, its raw -wal is in \(safety.directory) for abathur-walfix")
            }
            // The safety copy of a large database takes a while: look again just before the swap.
            try proveNothingHolds("prove nothing holds the database (again, before the swap)")
        } catch {
            if managesUnits { startUnitsAfterFailure() }
            throw error
        }

        var swapFailure: Error?
        var unitsRunning = false
        do {
            outcome.swap = try timeline.step("swap") {
                let report = try DatabaseSwap.install(candidate, over: database, busyTimeoutMs: request.busyTimeoutMs)
                temps.removeAll { $0 == candidate }
                let aside = report.movedAside.isEmpty ? "" : "; moved aside \(report.movedAside.map(Paths.basename).joined(separator: ", ")) into \(report.asideDirectory!)"
                return (report, "\(report.settled)\(aside); candidate renamed to \(database)")
            }
        } catch {
            // Did the rename land before the failure (a failed directory fsync)? Then the new
            // database is in place and goes through the post-check and, failing, the rollback.
            let now = try? FileStatus.of(database)
            guard let now, let candidateStatus, now.device == candidateStatus.device, now.inode == candidateStatus.inode else {
                if managesUnits { startUnitsAfterFailure() }
                let where_ = safety.map { "; the raw files as they were are in \($0.directory)" } ?? ""
                throw AbathurError((error as? AbathurError)?.kind ?? .io, database,
                                   "the swap failed, the old database is still in place: \((error as? AbathurError)?.message ?? "\(error)")\(where_)")
            }
            temps.removeAll { $0 == candidate }
            swapFailure = error
        }

        do {
            if let swapFailure { throw swapFailure }
            try timeline.step("post-check") { ((), try postCheck(database, sha256: sha256)) }
            if managesUnits {
                try timeline.step("start units") { ((), try units.start()) }
                unitsRunning = true
            }
            if let health = request.health {
                // Only a service this run started can answer; with --no-services, --to or no
                // configured units the operator starts it and checks it.
                if managesUnits {
                    let result = try timeline.step("health check") {
                        let result = health.run { self.console.info($0) }
                        outcome.health = result
                        guard result.healthy else {
                            throw AbathurError(.checkFailed, health.target, "unhealthy after \(result.attempts) attempt(s): \(result.detail)")
                        }
                        return (result, "\(health.target): \(result.detail) (attempt \(result.attempts))")
                    }
                    outcome.health = result
                } else {
                    timeline.note("health check", ok: true, "skipped: this run started no units (--no-services, --to, or services is empty)")
                }
            }
            outcome.result = "restored"
        } catch let failure {
            do {
                try rollback(to: safety, unitsRunning: unitsRunning)
            } catch {
                outcome.result = "failed"
                // Not 3: the database is not as it was; say where the raw files are.
                var kind = (error as? AbathurError)?.kind ?? .io
                if ExitCode(kind) == .verificationFailed { kind = .io }
                throw AbathurError(kind, database,
                                   "\(failure); rolling back failed too: \(error). The raw files of the database as it was are in \(safety?.directory ?? "(no safety copy)")")
            }
            outcome.result = "rolled back"
            outcome.rolledBack = true
            let original = safety.map { "the database as it was (safety copy \($0.directory))" } ?? "no database, as before"
            throw AbathurError(.checkFailed, database, "restore rolled back: \(failure); \(database) holds \(original)")
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
                let warning = "--force: swapping although \(who)"
                if !outcome.warnings.contains(warning) { outcome.warnings.append(warning) }
                return
            }
            throw AbathurError(.inUse, request.database, "still in use: \(who); nothing was changed (stop it, or add it to services)")
        }
    }

    /// Best effort after a failure: the service runs again, and a failure to start it is told.
    func startUnitsAfterFailure(_ name: String = "start units") {
        do {
            try timeline.step(name) { ((), try units.start()) }
        } catch {
            outcome.warnings.append("the units did not start again: \(error); start them by hand (systemctl start \(units.names.joined(separator: " ")))")
        }
    }

    /// The restored file must be exactly the checked candidate, alone (no companion files),
    /// and open as a healthy database.
    func postCheck(_ database: String, sha256: String) throws -> String {
        for companion in DatabaseFiles(database).companions where try FileStatus.of(companion) != nil {
            throw AbathurError(.checkFailed, companion, "appeared beside the restored database")
        }
        let (hex, _) = try GzipFile.sha256(of: database)
        guard hex == sha256 else {
            throw AbathurError(.checkFailed, database, "reads back with sha256 \(hex), the candidate had \(sha256)")
        }
        // The same bytes passed integrity_check and foreign_key_check as the candidate; what
        // is left to prove is that SQLite opens them at this path with the schema and rows.
        var options = request.check
        options.structural = false
        let report = try DatabaseCheck.run(path: database, options: options)
        if let failed = report.failure { throw AbathurError(.checkFailed, database, "\(failed.name) failed: \(failed.detail)") }
        if let expected = outcome.candidate?.rowCounts, report.rowCounts != expected {
            throw AbathurError(.checkFailed, database, "row counts differ from the candidate's")
        }
        return "sha256 matches the checked candidate; SQLite opens it: schema ok, \(report.rowCounts.values.reduce(0, +)) rows as expected"
    }

    /// Step 8: the database as it was, back through the same swap: stop the units again (when
    /// this run had started them), prove nothing holds it, keep a safety copy of the restored
    /// one, rebuild the old database from the safety copy as one settled file, swap, check,
    /// start.
    func rollback(to safety: SafetyCopy?, unitsRunning: Bool) throws {
        let database = request.database
        let directory = Paths.directory(of: database)
        let managesUnits = !units.names.isEmpty
        if managesUnits && unitsRunning { try timeline.step("rollback: stop units") { ((), try units.stop()) } }
        do {
            try proveNothingHolds("rollback: prove nothing holds the database")
            outcome.rollbackSafetyCopy = try timeline.step("rollback: safety copy") {
                let copy = try SafetyCopy.make(of: database, into: safetyRoot, tag: "rolled-back-\(outcome.kind.rawValue)")
                return (copy, copy.map { "the restored database into \($0.directory)" } ?? "nothing to copy")
            }
            if let safety, let old = safety.path(of: .main) {
                // The old database rebuilt as one file, its -wal folded in, as a raw source is.
                let rebuilt = try timeline.step("rollback: prepare") {
                    let rebuilt = try Candidate.write(from: ChosenSource(name: old, path: old, manifest: nil), into: directory,
                                                      force: false, verbatim: true)
                    temps.append(rebuilt.path)
                    return (rebuilt, "\(rebuilt.bytes) bytes rebuilt from \(safety.directory)" + (rebuilt.note.map { "; \($0)" } ?? ""))
                }
                let (candidate, sha) = (rebuilt.path, rebuilt.sha256)
                try timeline.step("rollback: swap") {
                    let report = try DatabaseSwap.install(candidate, over: database, busyTimeoutMs: request.busyTimeoutMs)
                    temps.removeAll { $0 == candidate }
                    return ((), "\(report.settled); old database renamed to \(database)")
                }
                try timeline.step("rollback: post-check") {
                    let (hex, _) = try GzipFile.sha256(of: database)
                    guard hex == sha else { throw AbathurError(.io, database, "reads back with sha256 \(hex), expected \(sha)") }
                    return ((), "sha256 matches the database as it was")
                }
            } else {
                try timeline.step("rollback: move the restored database aside") {
                    let report = try DatabaseSwap.moveAside(database, busyTimeoutMs: request.busyTimeoutMs)
                    return ((), "there was no database before; moved into \(report)")
                }
            }
        } catch {
            if managesUnits { startUnitsAfterFailure("rollback: start units") }
            throw error
        }
        if managesUnits { startUnitsAfterFailure("rollback: start units") }
    }
}
