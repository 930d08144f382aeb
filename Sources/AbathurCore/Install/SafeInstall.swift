#if canImport(Glibc)
import Glibc
#endif

/// Puts a checked candidate in place of a live database so that it can never make things
/// worse (SPEC.md, `abathur-restore`; issue 3). Restore and `--reinit` install through it;
/// so do walfix's repair, salvage's `--apply` and schema rollbacks, each with its own
/// candidate.
///
/// stop the units → prove nothing holds the database → safety copy → (the caller's
/// preparation, with the service stopped) → prove again → swap (`DatabaseSwap`: settle, move
/// the companions aside, rename) → post-check → start the units → health check. A failed
/// post-check or health check rolls back to the safety copy through the same swap and starts
/// the units.
///
/// | ends at | outcome | the database |
/// |---|---|---|
/// | the health check passed (or was not run) | `installed` | the candidate |
/// | a refusal before the swap (holders, units) | `refused` | untouched, units started again |
/// | another failure before the swap, or a swap that failed before its rename | `failed` | untouched (settled at most), units started again |
/// | the post-check or the health check failed | `rolledBack` | as it was, rebuilt from the safety copy |
/// | the rollback failed too | `failed(.rollback)` | not as it was: the safety copy has its raw files |
///
/// SIGINT, SIGTERM and SIGHUP are ignored (`policy.shieldSignals`) from the moment the units
/// stop until they run again: a dropped SSH session must not leave the service down halfway.
public final class SafeInstall {
    /// A database file ready to go live, already checked by the caller, and what the
    /// post-check must find at the database's path.
    public struct Candidate: Sendable {
        /// A file in the database's directory (the swap is a rename); it becomes the database.
        public var path: String
        public var sha256: String
        /// The rows per table the check counted; the installed database must have the same.
        public var rowCounts: [String: Int64]?
        /// What the post-check expects when it is not the policy's: a migration's new schema.
        public var check: DatabaseCheck.Options?

        public init(path: String, sha256: String, rowCounts: [String: Int64]?, check: DatabaseCheck.Options? = nil) {
            self.path = path
            self.sha256 = sha256
            self.rowCounts = rowCounts
            self.check = check
        }
    }

    /// How to install: what to stop and start, how to tell the service is healthy, where the
    /// safety copies go.
    public struct Policy: Sendable {
        public var database: String
        /// Stopped before anything changes and started at the end, whatever happened.
        public var units: Units
        /// Run after the units started; never when this run started no units.
        public var health: HealthCheck?
        /// The directory safety copies go into (`RestoreRequest.safetyRoot`).
        public var safetyRoot: String
        /// Names the safety copies `STAMP-TAG` and `STAMP-rolled-back-TAG`.
        public var tag: String
        /// Swap although a process holds the database (told as a warning).
        public var force = false
        public var busyTimeoutMs: Int
        /// What the post-check runs on the installed file (the structural checks are left
        /// out: the same bytes passed them as the candidate).
        public var check: DatabaseCheck.Options
        public var shieldSignals = true
        /// How the old `-wal` leaves: settled by SQLite (a restore), or kept as it is and
        /// bridged (walfix's repair); a rollback then puts the raw files back.
        public var retirement = DatabaseSwap.Retirement.settle
        /// What the timeline calls the copy taken before anything changes ("forensic copy"
        /// for walfix, whose copy is the evidence of a damaged WAL).
        public var copyName = "safety copy"

        public init(database: String, units: Units, health: HealthCheck?, safetyRoot: String, tag: String,
                    force: Bool, busyTimeoutMs: Int, check: DatabaseCheck.Options) {
            self.database = database
            self.units = units
            self.health = health
            self.safetyRoot = safetyRoot
            self.tag = tag
            self.force = force
            self.busyTimeoutMs = busyTimeoutMs
            self.check = check
        }
    }

    /// Where an install stopped.
    public enum Stage: String, Sendable, Encodable {
        case stopUnits = "stop units"
        case proveNothingHolds = "prove nothing holds the database"
        case safetyCopy = "safety copy"
        case prepare
        case swap
        case postCheck = "post-check"
        case startUnits = "start units"
        case healthCheck = "health check"
        case rollback
    }

    /// How it ended; `why` is the failure as the run reports it.
    public enum Outcome: Sendable {
        case installed
        /// The candidate failed at `stage`, after the swap (`why`), and the database as it
        /// was is back.
        case rolledBack(stage: Stage, why: AbathurError)
        /// Refused before anything changed.
        case refused(why: AbathurError)
        case failed(stage: Stage, why: AbathurError)

        /// A failure at `stage` that left the database as it was.
        static func unchanged(at stage: Stage, _ why: AbathurError) -> Outcome {
            InstallResult.beforeSwap(why) == .refused ? .refused(why: why) : .failed(stage: stage, why: why)
        }

        public var result: InstallResult {
            switch self {
            case .installed: return .installed
            case .rolledBack: return .rolledBack
            case .refused: return .refused
            case .failed: return .failed
            }
        }
    }

    /// What the install did, for the incident record and `--json`.
    public struct Report: Sendable {
        /// What the last look for holders found.
        public var holders: [Holder] = []
        public var safetyCopy: SafetyCopy?
        public var swap: DatabaseSwap.Report?
        /// True once the candidate has the database's name (it is no longer a temp file).
        public var swapped = false
        public var health: HealthCheck.Outcome?
        public var rollbackSafetyCopy: SafetyCopy?
        public var warnings: [String] = []
    }

    public let policy: Policy
    public let timeline: Timeline
    public private(set) var report = Report()
    private var temps: [String] = []

    public init(policy: Policy, timeline: Timeline) {
        self.policy = policy
        self.timeline = timeline
    }

    deinit {
        for path in temps { SafeFiles.removeQuietly(path) }
    }

    /// What a run that replaces a database in place (a repair, a migration) requires first: the
    /// database exists, as a regular file. For a symlink its target is given instead, so that
    /// the swap replaces the file and not the link.
    public static func requireExisting(_ database: String) throws {
        guard let status = try FileStatus.of(database) else { throw AbathurError(.notFound, database, "no such file") }
        guard status.isRegular else {
            throw AbathurError(.unsafePath, database, status.isSymlink ? "is a symlink; give its target with --db" : "not a regular file")
        }
    }

    /// Installs `candidate`, built before the service stopped (a restore).
    public func install(_ candidate: Candidate) -> Outcome {
        install { _ in candidate }
    }

    /// Stops the service, proves nothing holds the database and takes the safety copy, then
    /// calls `prepare` (given the safety copy, nil when there was no database) to build the
    /// candidate with the service stopped (walfix's repair, a migration), and installs it.
    /// A `prepare` that throws changes nothing live: the units start again.
    public func install(preparing prepare: (SafetyCopy?) throws -> Candidate) -> Outcome {
        guard policy.shieldSignals else { return installShielded(prepare) }
        return Signals.ignoringTermination { installShielded(prepare) }
    }

    private var managesUnits: Bool { !policy.units.names.isEmpty }

    private func installShielded(_ prepare: (SafetyCopy?) throws -> Candidate) -> Outcome {
        var stage = Stage.stopUnits
        let prepared: (candidate: Candidate, status: FileStatus?)
        do {
            prepared = try beforeSwap(prepare, stage: &stage)
        } catch {
            if managesUnits { startUnitsAfterFailure() }
            return .unchanged(at: stage, error as? AbathurError ?? AbathurError.internal("unexpected error: \(error)"))
        }
        return swapAndCheck(prepared.candidate, status: prepared.status)
    }

    /// Stop, prove, safety copy, the caller's preparation, prove again: nothing live changes.
    /// Returns the candidate and its file's identity before the swap.
    private func beforeSwap(_ prepare: (SafetyCopy?) throws -> Candidate, stage: inout Stage) throws -> (Candidate, FileStatus?) {
        let database = policy.database
        if managesUnits { try timeline.step("stop units") { ((), try policy.units.stop()) } }
        stage = .proveNothingHolds
        try proveNothingHolds("prove nothing holds the database")
        stage = .safetyCopy
        report.safetyCopy = try timeline.step(policy.copyName) {
            // The database is replaced by a rename and nothing holds it (proved just now).
            let copy = try SafetyCopy.make(of: database, into: policy.safetyRoot, tag: policy.tag, replacedByRename: true)
            let detail = copy.map { c in "\(c.files.map(\.name).joined(separator: ", ")) into \(c.directory)" } ?? "no database at \(database): nothing to copy"
            return (copy, detail)
        }
        // The settle before the swap lets SQLite's recovery drop what a damaged -wal hides
        // (FACTS.md 10); the raw files are in the safety copy, and the operator is told.
        let wal = DatabaseFiles(database).wal
        if case .settle = policy.retirement, let safety = report.safetyCopy, try FileStatus.of(wal)?.isRegular == true,
           let loss = try WALInspection.inspectConfirmed(wal).lossDescription {
            report.warnings.append("\(database)-wal: \(loss); the old database as SQLite reads it lacks them, its raw -wal is in \(safety.directory) for abathur-walfix")
        }
        stage = .prepare
        let candidate = try prepare(report.safetyCopy)
        let status = try FileStatus.of(candidate.path)
        // The safety copy of a large database takes a while: look again just before the swap.
        stage = .proveNothingHolds
        try proveNothingHolds("prove nothing holds the database (again, before the swap)")
        return (candidate, status)
    }

    /// The swap, then the post-check, the units and the health check; a failure after the
    /// rename rolls back.
    private func swapAndCheck(_ candidate: Candidate, status candidateStatus: FileStatus?) -> Outcome {
        let database = policy.database
        var swapFailure: (any Error)?
        do {
            report.swap = try timeline.step("swap") {
                let swap = try DatabaseSwap.install(candidate.path, over: database, busyTimeoutMs: policy.busyTimeoutMs,
                                                    retiring: policy.retirement)
                report.swapped = true
                let aside = swap.movedAside.isEmpty ? "" : "; moved aside \(swap.movedAside.map(Paths.basename).joined(separator: ", ")) into \(swap.asideDirectory!)"
                return (swap, "\(swap.settled)\(aside); candidate renamed to \(database)")
            }
        } catch {
            // Did the rename land before the failure (a failed directory fsync)? Then the new
            // database is in place and goes through the post-check and, failing, the rollback.
            let now = try? FileStatus.of(database)
            guard let now, let candidateStatus, now.device == candidateStatus.device, now.inode == candidateStatus.inode else {
                if managesUnits { startUnitsAfterFailure() }
                let failure = SafeInstall.reported(error, as: .io)
                let where_ = report.safetyCopy.map { "; the raw files as they were are in \($0.directory)" } ?? ""
                return .unchanged(at: .swap, AbathurError(failure.kind, database,
                                                          "the swap failed, the old database is still in place: \(failure.message)\(where_)"))
            }
            report.swapped = true
            swapFailure = error
        }

        var stage = swapFailure == nil ? Stage.postCheck : .swap
        var unitsRunning = false
        do {
            if let swapFailure { throw swapFailure }
            try timeline.step("post-check") { ((), try postCheck(candidate)) }
            if managesUnits {
                stage = .startUnits
                try timeline.step("start units") { ((), try policy.units.start()) }
                unitsRunning = true
            }
            if let health = policy.health {
                stage = .healthCheck
                try healthCheck(health)
            }
            return .installed
        } catch let failure {
            do {
                try rollback(unitsRunning: unitsRunning)
            } catch {
                // Not 3: the database is not as it was; say where the raw files are.
                let rollbackFailure = SafeInstall.reported(error, as: .io)
                let kind = ExitCode(rollbackFailure.kind) == .verificationFailed ? AbathurError.Kind.io : rollbackFailure.kind
                return .failed(stage: .rollback, why: AbathurError(kind, database,
                    "\(failure); rolling back failed too: \(error). The raw files of the database as it was are in \(report.safetyCopy?.directory ?? "(no safety copy)")"))
            }
            return .rolledBack(stage: stage, why: SafeInstall.reported(failure, as: .checkFailed))
        }
    }

    /// `error` as this install reports it: an `AbathurError` as it is, anything else with its
    /// description, as `kind`.
    static func reported(_ error: any Error, as kind: AbathurError.Kind) -> AbathurError {
        error as? AbathurError ?? AbathurError(kind, nil, "\(error)")
    }

    /// Only a service this run started can answer; with no units to manage (`--no-services`,
    /// `--to`, `services` empty) the operator starts it and checks it.
    private func healthCheck(_ health: HealthCheck) throws {
        guard managesUnits else {
            timeline.note("health check", ok: true, "skipped: this run started no units (--no-services, --to, or services is empty)")
            return
        }
        report.health = try timeline.step("health check") {
            let result = health.run { self.timeline.events.info($0) }
            report.health = result
            guard result.healthy else {
                throw AbathurError(.checkFailed, health.target, "unhealthy after \(result.attempts) attempt(s): \(result.detail)")
            }
            return (result, "\(health.target): \(result.detail) (attempt \(result.attempts))")
        }
    }

    private func proveNothingHolds(_ name: String) throws {
        let database = policy.database
        let holders = try timeline.step(name) {
            let check = try Holders.check(database)
            let detail = check.holders.isEmpty ? "no process has it open or locked; SQLite probe: \(check.probe)"
                : check.holders.map(\.description).joined(separator: "; ")
            return (check.holders, detail)
        }
        report.holders = holders
        guard holders.isEmpty else {
            let who = holders.map(\.description).joined(separator: "; ")
            if policy.force {
                let warning = "--force: swapping although \(who)"
                if !report.warnings.contains(warning) { report.warnings.append(warning) }
                return
            }
            throw AbathurError(.inUse, database, "still in use: \(who); nothing was changed (stop it, or add it to services)")
        }
    }

    /// Best effort after a failure: the service runs again, and a failure to start it is told.
    private func startUnitsAfterFailure(_ name: String = "start units") {
        do {
            try timeline.step(name) { ((), try policy.units.start()) }
        } catch {
            report.warnings.append("the units did not start again: \(error); start them by hand (systemctl start \(policy.units.names.joined(separator: " ")))")
        }
    }

    /// The installed file must be exactly the checked candidate, alone (no companion files),
    /// and open as a healthy database.
    private func postCheck(_ candidate: Candidate) throws -> String {
        let database = policy.database
        for companion in DatabaseFiles(database).companions where try FileStatus.of(companion) != nil {
            throw AbathurError(.checkFailed, companion, "appeared beside the restored database")
        }
        let (hex, _) = try GzipFile.sha256(of: database)
        guard hex == candidate.sha256 else {
            throw AbathurError(.checkFailed, database, "reads back with sha256 \(hex), the candidate had \(candidate.sha256)")
        }
        // The same bytes passed integrity_check and foreign_key_check as the candidate; what
        // is left to prove is that SQLite opens them at this path with the schema and rows.
        var options = candidate.check ?? policy.check
        options.structural = false
        let check = try DatabaseCheck.run(path: database, options: options)
        if let failed = check.failure { throw AbathurError(.checkFailed, database, "\(failed.name) failed: \(failed.detail)") }
        if let expected = candidate.rowCounts, check.rowCounts != expected {
            throw AbathurError(.checkFailed, database, "row counts differ from the candidate's")
        }
        return "sha256 matches the checked candidate; SQLite opens it: schema ok, \(check.rowCounts.values.reduce(0, +)) rows as expected"
    }

    /// The raw files as they were (a WAL that must never be settled: walfix): each copied from
    /// the safety copy to a temp name beside the database and renamed into place, the database
    /// first, then its `-wal` and `-shm`. Between the renames the name holds the old main file
    /// without its `-wal`: a consistent older state, never the new file with the old `-wal`.
    private func putBackRaw(_ safety: SafetyCopy) throws {
        let database = policy.database
        let directory = Paths.directory(of: database)
        try timeline.step("rollback: put the raw files back") {
            for file in [DatabaseFiles.File.main, .wal, .shm] {
                guard let source = safety.path(of: file) else { continue }
                let temp = SafeFiles.tempPath(in: directory, tag: "rollback\(file.suffix)")
                temps.append(temp)
                let (sha, _) = try SafeFiles.copy(source, toNew: temp, sync: true)
                if file == .main {
                    try DatabaseSwap.takeOwnership(temp, from: database)
                    // Whatever the installed database has beside it goes aside first.
                    _ = try DatabaseSwap.moveAside(database, files: DatabaseFiles.File.companions)
                }
                try SafeFiles.publish(temp, as: DatabaseFiles(database).path(file))
                temps.removeAll { $0 == temp }
                guard safety.files.contains(where: { $0.sha256 == sha }) else {
                    throw AbathurError(.io, source, "changed while it was copied back")
                }
            }
            return ((), "the database, its -wal and -shm as they were, from \(safety.directory)")
        }
    }

    /// The database as it was, back through the same swap: stop the units again (when this
    /// run had started them), prove nothing holds it, keep a safety copy of the installed one,
    /// rebuild the old database from the safety copy as one settled file, swap, check, start.
    private func rollback(unitsRunning: Bool) throws {
        let database = policy.database
        let directory = Paths.directory(of: database)
        if managesUnits && unitsRunning { try timeline.step("rollback: stop units") { ((), try policy.units.stop()) } }
        do {
            try proveNothingHolds("rollback: prove nothing holds the database")
            report.rollbackSafetyCopy = try timeline.step("rollback: safety copy") {
                let copy = try SafetyCopy.make(of: database, into: policy.safetyRoot, tag: "rolled-back-\(policy.tag)")
                return (copy, copy.map { "the restored database into \($0.directory)" } ?? "nothing to copy")
            }
            if case .bridge = policy.retirement, let safety = report.safetyCopy, safety.path(of: .main) != nil {
                try putBackRaw(safety)
            } else if let safety = report.safetyCopy, let old = safety.path(of: .main) {
                // The old database rebuilt as one file, its -wal folded in, as a raw source is.
                let rebuilt = try timeline.step("rollback: prepare") {
                    let rebuilt = try AbathurCore.Candidate.write(from: ChosenSource(name: old, path: old, manifest: nil), into: directory,
                                                      force: false, verbatim: true)
                    temps.append(rebuilt.path)
                    return (rebuilt, "\(rebuilt.bytes) bytes rebuilt from \(safety.directory)" + (rebuilt.note.map { "; \($0)" } ?? ""))
                }
                try timeline.step("rollback: swap") {
                    let swap = try DatabaseSwap.install(rebuilt.path, over: database, busyTimeoutMs: policy.busyTimeoutMs)
                    temps.removeAll { $0 == rebuilt.path }
                    return ((), "\(swap.settled); old database renamed to \(database)")
                }
                try timeline.step("rollback: post-check") {
                    let (hex, _) = try GzipFile.sha256(of: database)
                    guard hex == rebuilt.sha256 else { throw AbathurError(.io, database, "reads back with sha256 \(hex), expected \(rebuilt.sha256)") }
                    return ((), "sha256 matches the database as it was")
                }
            } else {
                try timeline.step("rollback: move the restored database aside") {
                    let aside = try DatabaseSwap.moveAside(database, busyTimeoutMs: policy.busyTimeoutMs)
                    return ((), "there was no database before; moved into \(aside)")
                }
            }
        } catch {
            if managesUnits { startUnitsAfterFailure("rollback: start units") }
            throw error
        }
        if managesUnits { startUnitsAfterFailure("rollback: start units") }
    }
}

/// How a run that installs a database ended, as its incident record and `--json` say it.
public enum InstallResult: String, Sendable, Encodable {
    case installed = "restored"
    case rolledBack = "rolled back"
    case refused
    case failed

    /// A run that failed before its swap: `refused` when a precondition did not hold (an
    /// error that exits 7: a holder, an unsafe path, a foreign database...), else `failed`.
    public static func beforeSwap(_ error: AbathurError) -> InstallResult {
        error.exitCode == .refused ? .refused : .failed
    }
}
