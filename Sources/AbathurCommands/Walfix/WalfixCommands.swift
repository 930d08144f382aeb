import AbathurCore

/// What `abathur-walfix` prints and returns for an inspect, a checkpoint and a repair.
enum WalfixCommands {
    // MARK: inspect

    /// `--json`'s result for `inspect`. Keys whose value is unknown are written as null, so a
    /// reader always finds them.
    struct InspectOutput: Encodable {
        var diagnosis: WALDiagnosis

        enum Key: String, CodingKey {
            case database, wal, walBytes, pageSize, checkpointSequence, salt1, salt2, byteOrder, headerChecksumValid, headerProblem
            case frames, validFrames, committedFrames, commits, uncommittedFrames, firstInvalidFrame, invalidReason, damage
            case droppedCommits, droppedFrames, droppedPages, droppedTables, unverifiedCommits, trailingBytes
            case fits, fitDetail, shm, holders, locks, starved, maxWalSize, overMaxWalSize, verdict
        }

        struct SharedMemory: Encodable {
            var present: Bool
            var copiesAgree: Bool?
            var mxFrame: UInt32?
            var nBackfill: UInt32?
            var matchesWal: Bool?
            var readMarks: [UInt32]?
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            let d = diagnosis
            let wal = d.wal
            try c.encode(d.database, forKey: .database)
            try c.encode(d.walPath, forKey: .wal)
            try c.encode(d.walBytes, forKey: .walBytes)
            try c.encode(wal?.pageSize, forKey: .pageSize)
            try c.encode(d.header?.checkpointSequence, forKey: .checkpointSequence)
            try c.encode(d.header?.salt1, forKey: .salt1)
            try c.encode(d.header?.salt2, forKey: .salt2)
            try c.encode(d.header.map { $0.checksumsLittleEndian ? "little-endian" : "big-endian" }, forKey: .byteOrder)
            try c.encode(d.header?.checksumIsValid, forKey: .headerChecksumValid)
            try c.encode(wal?.headerProblem, forKey: .headerProblem)
            try c.encode(wal?.framesInFile ?? 0, forKey: .frames)
            try c.encode(wal?.validFrames ?? 0, forKey: .validFrames)
            try c.encode(wal?.committedFrames ?? 0, forKey: .committedFrames)
            try c.encode(wal?.commits ?? 0, forKey: .commits)
            try c.encode(wal?.uncommittedFrames ?? 0, forKey: .uncommittedFrames)
            try c.encode(wal?.firstInvalidFrame, forKey: .firstInvalidFrame)
            try c.encode(wal?.invalidReason, forKey: .invalidReason)
            try c.encode(d.isDamage, forKey: .damage)
            try c.encode(wal?.droppedCommits ?? 0, forKey: .droppedCommits)
            try c.encode(wal?.droppedFrames ?? 0, forKey: .droppedFrames)
            try c.encode(d.droppedPages.count, forKey: .droppedPages)
            try c.encode(Dictionary(uniqueKeysWithValues: d.droppedTally.map { ($0.name, $0.pages) }), forKey: .droppedTables)
            try c.encode(wal?.unverifiedCommits ?? 0, forKey: .unverifiedCommits)
            try c.encode(wal?.trailingBytes ?? 0, forKey: .trailingBytes)
            try c.encode(d.overlay?.fit ?? .nothingToCheck, forKey: .fits)
            try c.encode(d.overlay?.detail ?? "no -wal: nothing is laid over the database", forKey: .fitDetail)
            let shm = d.index.map { index in
                SharedMemory(present: true, copiesAgree: index.copiesAgree, mxFrame: index.mxFrame, nBackfill: index.nBackfill,
                             matchesWal: d.header.map { index.describes($0) && Int(index.mxFrame) == (wal?.committedFrames ?? 0) },
                             readMarks: index.readMarks)
            } ?? SharedMemory(present: false)
            try c.encode(shm, forKey: .shm)
            try c.encode(d.openers, forKey: .holders)
            try c.encode(d.locks, forKey: .locks)
            try c.encode(d.starved, forKey: .starved)
            try c.encode(d.maxWALSize, forKey: .maxWalSize)
            try c.encode(d.overMaxSize, forKey: .overMaxWalSize)
            try c.encode(d.verdict, forKey: .verdict)
        }
    }

    static func inspect(maxWALSize: Int64?, _ context: ToolContext) throws -> (ExitCode, InspectOutput?) {
        let settings = context.settings!
        let database = settings.string(.database)
        let d = try WALDiagnosis.run(database: database, tempDir: settings.string(.tempDir), maxWALSize: maxWALSize,
                                     busyTimeoutMs: try settings.value(.busyTimeoutMs))
        let out = context.console
        guard let wal = d.wal else {
            out.result("\(d.walPath): none (or empty): nothing waits for a checkpoint")
            out.result("verdict: \(d.verdict)")
            return (d.exitCode, InspectOutput(diagnosis: d))
        }
        if let header = d.header {
            out.result("\(d.walPath): \(Bytes.describe(wal.fileSize)), \(wal.framesInFile) frame(s) of \(wal.pageSize)-byte pages; header: magic \(header.checksumsLittleEndian ? "little" : "big")-endian, checkpoint sequence \(header.checkpointSequence), salts \(hex(header.salt1))/\(hex(header.salt2)), checksum \(header.checksumIsValid ? "valid" : "INVALID")")
        } else {
            out.result("\(d.walPath): \(Bytes.describe(wal.fileSize)); header unreadable")
        }
        if let problem = wal.headerProblem { out.result("header: \(problem)") }
        let prefix = wal.committedFrames > 0 ? "\(wal.commits) commit(s) in frames 1-\(wal.committedFrames)" : "no commit"
        out.result("committed prefix: \(prefix) (SQLite's mxFrame \(wal.committedFrames)); uncommitted tail: \(wal.uncommittedFrames) frame(s)")
        if let frame = wal.firstInvalidFrame {
            let meaning = d.isDamage ? "damage"
                : wal.invalidBreak == .saltMismatch ? "normal: frames of an earlier WAL generation after a checkpoint reset"
                : "harmless: no commit follows it (an unfinished transaction, or a torn write)"
            out.result("first invalid frame: \(frame) (\(wal.invalidReason ?? "?")): \(meaning)")
        } else {
            out.result("first invalid frame: none")
        }
        if wal.droppedCommits > 0 {
            out.result("DROPPED by SQLite's recovery: \(wal.droppedCommits) commit(s), \(d.droppedPages.count) page(s): \(WALOverlay.describe(d.droppedTally))")
        } else {
            out.result("dropped commits: none")
        }
        if wal.trailingBytes > 0 { out.result("trailing bytes: \(wal.trailingBytes) (a torn frame at the end: harmless)") }
        if let index = d.index {
            let agrees = d.header.map { index.describes($0) } ?? false
            out.result("-shm: header copies \(index.copiesAgree ? "agree" : "DISAGREE"), mxFrame \(index.mxFrame) (\(agrees && Int(index.mxFrame) == wal.committedFrames ? "matches the WAL" : "the WAL's is \(wal.committedFrames)\(agrees ? "" : ", other salts")")), \(index.nBackfill) frame(s) checkpointed")
        } else {
            out.result("-shm: none")
        }
        for lock in d.locks {
            out.result("lock: pid \(lock.pid) (\(lock.command)) holds the \(lock.slot)\(lock.mark.map { $0 == 0 ? " (reads the main file alone: no frame can be checkpointed meanwhile)" : " (its snapshot ends at frame \($0))" } ?? "") on \(Paths.basename(lock.path))")
        }
        for holder in d.openers where !d.locks.contains(where: { $0.pid == holder.pid }) {
            out.result("open: pid \(holder.pid) (\(holder.command)) has \(Paths.basename(holder.path)) open")
        }
        if let overlay = d.overlay { out.result("fits the database: \(overlay.fit.rawValue): \(overlay.detail)") }
        out.result("verdict: \(d.verdict)")
        if d.loses { context.report(AbathurError(.walLoss, d.walPath, wal.lossDescription!)) }
        else if d.doesNotFit { context.report(AbathurError(.walLoss, d.walPath, "does not fit the database: \(d.overlay!.detail)")) }
        else if d.exitCode == .warning { context.warn(d.verdict) }
        return (d.exitCode, InspectOutput(diagnosis: d))
    }

    static func inspectMetrics(_ sink: inout PrometheusMetrics, _ code: ExitCode, _ output: InspectOutput?) {
        guard let d = output?.diagnosis else { return }
        sink.gauge("abathur_walfix_wal_bytes", "Size of the -wal.", Double(d.walBytes))
        sink.gauge("abathur_walfix_committed_frames", "Frames of the committed prefix (SQLite's mxFrame).", Double(d.wal?.committedFrames ?? 0))
        sink.gauge("abathur_walfix_dropped_commits", "Committed transactions SQLite's recovery would silently drop.", Double(d.wal?.droppedCommits ?? 0))
        sink.gauge("abathur_walfix_fits", "1 when the WAL fits the database (or there is nothing to check), 0 when not, -1 unchecked.",
                   d.overlay?.fit == .breaks ? 0 : d.overlay?.fit == .unchecked ? -1 : 1)
        sink.gauge("abathur_walfix_checkpoint_starved", "1 when readers starve checkpoints.", d.starved ? 1 : 0)
    }

    static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }

    // MARK: checkpoint

    static func checkpoint(mode: WALCheckpoint.Mode, _ context: ToolContext) throws -> (ExitCode, WALCheckpoint.Outcome?) {
        let settings = context.settings!
        let database = settings.string(.database)
        let outcome = try WALCheckpoint.run(database: database, mode: mode, tempDir: settings.string(.tempDir),
                                            busyTimeoutMs: try settings.value(.busyTimeoutMs))
        let out = context.console
        out.result("checkpoint (\(mode.rawValue)): busy \(outcome.busy), log \(outcome.log) frame(s), checkpointed \(outcome.checkpointed); -wal \(Bytes.describe(outcome.walBytesBefore)) -> \(Bytes.describe(outcome.walBytesAfter))")
        let blockers = blockerList(outcome)
        for line in blockers { out.result("blocked by: \(line)") }
        if outcome.fit == .unchecked, let detail = outcome.fitDetail { context.warn(detail) }
        let who = blockers.isEmpty ? "no other process was found holding it" : blockers.joined(separator: "; ")
        if outcome.busy != 0 {
            context.report(AbathurError(.busy, database, "checkpoint (\(mode.rawValue)) busy past the busy timeout: \(outcome.checkpointed) of \(outcome.log) frame(s) checkpointed; blocked by \(who)"))
            return (.busy, outcome)
        }
        if !outcome.complete {
            context.warn("checkpoint (\(mode.rawValue)) left \(outcome.log - outcome.checkpointed) of \(outcome.log) frame(s) uncopied; held back by \(who)")
            return (.warning, outcome)
        }
        return (context.warnings.isEmpty ? .success : .warning, outcome)
    }

    static func blockerList(_ outcome: WALCheckpoint.Outcome) -> [String] {
        var lines = outcome.blockers.map { "pid \($0.pid) (\($0.command)) holds the \($0.slot) on \(Paths.basename($0.path))" }
        for holder in outcome.openers where !outcome.blockers.contains(where: { $0.pid == holder.pid }) {
            lines.append("pid \(holder.pid) (\(holder.command)) has \(Paths.basename(holder.path)) open")
        }
        return lines
    }

    static func checkpointMetrics(_ sink: inout PrometheusMetrics, _ code: ExitCode, _ outcome: WALCheckpoint.Outcome?) {
        guard let outcome else { return }
        sink.gauge("abathur_walfix_checkpoint_busy", "1 when the last checkpoint was busy.", Double(outcome.busy))
        sink.gauge("abathur_walfix_checkpoint_log_frames", "Frames in the WAL at the last checkpoint.", Double(outcome.log))
        sink.gauge("abathur_walfix_checkpoint_checkpointed_frames", "Frames the last checkpoint copied.", Double(outcome.checkpointed))
    }

    // MARK: repair

    static func repair(choice: WALRepair.Choice, noServices: Bool, force: Bool, _ context: ToolContext) throws -> (ExitCode, WALRepair.Outcome?) {
        var request = try RestoreRequest(settings: context.settings, toolVersion: AbathurVersion.current)
        request.force = force
        if noServices { request.services = [] }
        let job = WALRepair(request: request, choice: choice, events: context.console.events)
        var failure: AbathurError?
        do { try job.run() } catch { failure = error as? AbathurError ?? AbathurError.internal("unexpected error: \(error)") }
        let outcome = job.outcome
        let out = context.console
        if let copy = outcome.forensicCopy { out.result("forensic copy: \(copy)") }
        for line in outcome.choices { out.result("choice: \(line)") }
        for warning in outcome.warnings { context.warn(warning) }
        if let failure {
            context.report(failure)
            return (failure.exitCode, outcome)
        }
        if outcome.action == "nothing to repair" {
            out.result("\(request.database): no -wal: nothing to repair")
            return (.success, outcome)
        }
        out.result("repaired \(request.database) (\(outcome.action)): \(outcome.recoveredCommits) commit(s) kept, \(outcome.lostCommits) lost, in \(Double(outcome.totalMs) / 1000)s")
        if let aside = outcome.asideDirectory { out.result("the old -wal and -shm, as they were: \(aside)") }
        return (context.warnings.isEmpty ? .success : .warning, outcome)
    }

    static func repairMetrics(_ sink: inout PrometheusMetrics, _ code: ExitCode, _ outcome: WALRepair.Outcome?) {
        guard let outcome else { return }
        sink.gauge("abathur_walfix_repair_duration_seconds", "Duration of the last repair.", Double(outcome.totalMs) / 1000)
        sink.gauge("abathur_walfix_repair_lost_commits", "Commits the last repair did not keep.", Double(outcome.lostCommits))
    }
}
