/// `abathur-diskcheck --fix` (issue 12; SPEC.md, `abathur-diskcheck`): the ordered, safe way
/// out of a full disk. Each step runs only while a filesystem it frees space on is short of
/// the target, free space is measured again after it (never taken from what the step claims),
/// and the run stops as soon as every filesystem of the report meets the target:
///
/// 1. release the reserve (the ballast file beside the database);
/// 2. `wal_checkpoint(TRUNCATE)` with the busy timeout, after the offline look at the WAL
///    (`WALCheckpoint`); busy names the blockers;
/// 3. remove the stale temp files of killed runs;
/// 4. remove old safety copies and aside directories by `safety_keep`/`safety_max_age`,
///    never the newest of each (incident records, kilobytes of history, and walfix's
///    forensic copies, evidence, are never removed);
/// 5. prune backups oldest first down to the floor (`RetentionPolicy.emergency`: the
///    `keep_min_verified` newest verified ones stay; manual backups only with
///    `--include-manual`);
/// 6. VACUUM (or `incremental_vacuum`), only when the space it needs is free
///    (`DiskReport.vacuum`), with the units stopped and nothing holding the database;
///    otherwise the plan that would work, with numbers.
///
/// Runs under the backup directory's lock and the database's, like every fix. `dryRun`
/// plans with estimates and changes nothing.
public final class DiskFix {
    public struct Options: Sendable {
        public var target: DiskTarget
        public var includeManual: Bool
        public var units: Units
        public var busyTimeoutMs: Int
        public var lockWait: Double
        public var dryRun: Bool

        public init(target: DiskTarget, includeManual: Bool, units: Units, busyTimeoutMs: Int, lockWait: Double, dryRun: Bool) {
            self.target = target
            self.includeManual = includeManual
            self.units = units
            self.busyTimeoutMs = busyTimeoutMs
            self.lockWait = lockWait
            self.dryRun = dryRun
        }
    }

    public enum Kind: String, Sendable, Encodable, CaseIterable {
        case reserve = "release the reserve"
        case checkpoint = "checkpoint (TRUNCATE)"
        case staleTemps = "remove stale temp files"
        case leftovers = "remove old safety copies and aside directories"
        case backups = "prune backups down to the floor"
        case vacuum = "vacuum"
    }

    public struct Step: Sendable, Encodable {
        public var number: Int
        public var kind: Kind
        public var name: String
        /// `would run`, `done`, `busy`, `incomplete`, `refused`, `failed`, `skipped`,
        /// `not needed` (the target was reached before it).
        public var status: String
        /// What the plan expects it to free.
        public var estimatedBytes: Int64
        /// Measured: the free bytes the filesystems it worked on gained (nil when not run).
        public var freedBytes: Int64?
        /// What it removed, by path.
        public var removed: [String]
        public var detail: String
    }

    public struct Outcome: Sendable, Encodable {
        public var target: DiskTarget
        public var dryRun: Bool
        public var steps: [Step]
        /// Every filesystem meets the target at the end (for a dry run: would, by the estimates).
        public var reached: Bool
        public var freedBytes: Int64
        /// The commands that would reclaim the freelist when a VACUUM in place does not fit.
        public var vacuumPlan: [String]
        public var warnings: [String]
    }

    let settings: Settings
    let places: DiskReport.Places
    let thresholds: DiskThresholds
    let options: Options
    let events: EventSink
    public private(set) var outcome: Outcome
    /// In a dry run, what the step being planned expects to free, by device.
    var credit: [UInt64: Int64] = [:]

    public init(settings: Settings, places: DiskReport.Places, thresholds: DiskThresholds, options: Options, events: EventSink) {
        self.settings = settings
        self.places = places
        self.thresholds = thresholds
        self.options = options
        self.events = events
        outcome = Outcome(target: options.target, dryRun: options.dryRun, steps: [], reached: false, freedBytes: 0, vacuumPlan: [], warnings: [])
    }

    // MARK: measuring

    /// The filesystems of the report now, by device.
    func measure() throws -> [UInt64: Filesystem] {
        var now: [UInt64: Filesystem] = [:]
        for volume in try DiskReport.volumes(places, thresholds: thresholds) { now[volume.filesystem.device] = volume.filesystem }
        return now
    }

    /// The devices still short of the target.
    func short(_ filesystems: [UInt64: Filesystem]) -> Set<UInt64> {
        Set(filesystems.filter { !options.target.isMet(by: $0.value) }.keys)
    }

    static func device(of path: String) throws -> UInt64 { try Filesystem.holding(path).device }

    // MARK: the run

    /// Plans (dry run) or runs the steps. Throws what must stop the fix at once: the lock
    /// (exit 5), a WAL whose checkpoint would lose commits (exit 4).
    public func run() throws {
        let locks = options.dryRun ? [] : try lock()
        defer { for lock in locks { lock.release() } }
        var filesystems = try measure()
        for kind in Kind.allCases {
            let shortNow = short(filesystems)
            var step = Step(number: outcome.steps.count + 1, kind: kind, name: kind.rawValue, status: "", estimatedBytes: 0,
                            freedBytes: nil, removed: [], detail: "")
            if shortNow.isEmpty {
                step.status = "not needed"
                step.detail = "every filesystem is \(options.target.description)"
                outcome.steps.append(step)
                continue
            }
            do {
                try perform(&step, short: shortNow, filesystems: &filesystems)
            } catch let error as AbathurError {
                // What stops the fix (a WAL that would lose commits) is on the record too.
                step.status = [.corrupt, .refused].contains(error.exitCode) ? "refused" : "failed"
                step.detail = error.description
                outcome.steps.append(step)
                throw error
            }
            outcome.steps.append(step)
            events.info("step \(step.number), \(step.name): \(step.status)\(step.freedBytes.map { ", freed \(Bytes.describe($0))" } ?? ""): \(step.detail)")
        }
        outcome.reached = short(filesystems).isEmpty
        outcome.freedBytes = outcome.steps.compactMap(\.freedBytes).reduce(0, +)
    }

    /// The backup directory's lock (unless it is read-only) and the database's.
    func lock() throws -> [FileLock] {
        var locks: [FileLock] = []
        if FileLock.readOnlyReason(places.backupDir) == nil, try FileStatus.of(places.backupDir)?.isDirectory == true {
            locks.append(try FileLock.acquire(Paths.join(places.backupDir, Catalog.lockName), wait: options.lockWait))
        }
        locks.append(try FileLock.acquire(FileLock.path(forDatabase: places.database), wait: options.lockWait))
        return locks
    }

    /// Runs one step (or estimates it, in a dry run) and measures what it freed.
    func perform(_ step: inout Step, short: Set<UInt64>, filesystems: inout [UInt64: Filesystem]) throws {
        let before = filesystems
        credit = [:]
        switch step.kind {
        case .reserve: try releaseReserve(&step, short: short)
        case .checkpoint: try checkpoint(&step, short: short)
        case .staleTemps: try staleTemps(&step, short: short)
        case .leftovers: try leftovers(&step, short: short, filesystems: &filesystems)
        case .backups: try backups(&step, short: short, filesystems: &filesystems)
        case .vacuum: try vacuum(&step, short: short)
        }
        if options.dryRun {
            // What the estimates say would be free afterwards.
            for (device, bytes) in credit { filesystems[device]?.credit(bytes) }
            return
        }
        if ["done", "busy", "incomplete", "failed"].contains(step.status) {
            filesystems = try measure()
            // Only the filesystems the step works on: others (a busy /var/tmp) change meanwhile.
            step.freedBytes = short.compactMap { device in
                filesystems[device].map { now in now.freeBytes - (before[device]?.freeBytes ?? now.freeBytes) }
            }.reduce(0, +)
        }
    }

    // MARK: 1. the reserve

    func releaseReserve(_ step: inout Step, short: Set<UInt64>) throws {
        let reserve = try Reserve.look(database: places.database, configured: try settings.value(.reserve))
        guard let allocated = reserve.allocatedBytes else {
            step.status = "skipped"
            step.detail = "no reserve at \(reserve.path)" + (reserve.configuredBytes == nil ? " (reserve is not configured)" : "")
            return
        }
        let device = try DiskFix.device(of: reserve.path)
        guard short.contains(device) else { return skip(&step, "\(reserve.path) is on a filesystem that meets the target") }
        step.estimatedBytes = allocated
        credit[device] = allocated
        if options.dryRun { return plan(&step, "would delete \(reserve.path), \(Bytes.describe(allocated))") }
        try Reserve.release(database: places.database)
        step.status = "done"
        step.removed = [reserve.path]
        step.detail = "deleted \(reserve.path) (\(Bytes.describe(allocated))); the next run without --fix creates it again when it fits"
    }

    // MARK: 2. the checkpoint

    func checkpoint(_ step: inout Step, short: Set<UInt64>) throws {
        let wal = DatabaseFiles(places.database).wal
        guard let status = try FileStatus.of(wal), status.isRegular, status.size > 0 else {
            return skip(&step, "no -wal (or an empty one): nothing to checkpoint")
        }
        let device = try DiskFix.device(of: wal)
        guard short.contains(device) else { return skip(&step, "the -wal is on a filesystem that meets the target") }
        step.estimatedBytes = status.allocatedBytes
        credit[device] = status.allocatedBytes
        if options.dryRun {
            return plan(&step, "would run wal_checkpoint(TRUNCATE) on \(places.database): frees up to the -wal's \(Bytes.describe(status.allocatedBytes)), less what the main file grows")
        }
        do {
            let result = try WALCheckpoint.run(database: places.database, mode: .truncate, tempDir: places.tempDir, busyTimeoutMs: options.busyTimeoutMs)
            let who = (result.blockers.map { "pid \($0.pid) (\($0.command)) holds the \($0.slot)" }
                + result.openers.filter { o in !result.blockers.contains { $0.pid == o.pid } }.map { "pid \($0.pid) (\($0.command)) has it open" })
            let blockers = who.isEmpty ? "no other process was found holding it" : who.joined(separator: "; ")
            // After a TRUNCATE that completed SQLite reports 0 of 0: the -wal is empty.
            let copied = result.log > 0 ? "\(result.checkpointed) of \(result.log) frame(s) copied; " : ""
            let frames = "\(copied)-wal \(Bytes.describe(result.walBytesBefore)) -> \(Bytes.describe(result.walBytesAfter))"
            if result.busy != 0 {
                step.status = "busy"
                step.detail = "busy past the busy timeout (\(options.busyTimeoutMs) ms): \(frames); blocked by \(blockers)"
                outcome.warnings.append("checkpoint of \(places.database) was busy: blocked by \(blockers)")
            } else if !result.complete {
                step.status = "incomplete"
                step.detail = "\(frames); held back by \(blockers)"
                outcome.warnings.append("checkpoint of \(places.database) was incomplete: held back by \(blockers)")
            } else {
                step.status = "done"
                step.detail = frames
            }
        } catch let error as AbathurError where error.exitCode == .busy {
            step.status = "busy"
            step.detail = "\(error.description); nothing was checkpointed"
            outcome.warnings.append("checkpoint of \(places.database) was busy: \(error.description)")
        } catch let error as AbathurError where error.kind == .noSpace || error.exitCode == .ioError {
            step.status = "failed"
            step.detail = "\(error.description); later steps may make room, then run 'abathur-walfix checkpoint'"
            outcome.warnings.append("checkpoint failed: \(error.description)")
        }
    }

    // MARK: 3. stale temp files

    func staleTemps(_ step: inout Step, short: Set<UInt64>) throws {
        var found: [(TempSweep.Place, [SafeFiles.StaleTemp])] = []
        for (place, temps) in TempSweep.stale(settings) {
            let device = try DiskFix.device(of: place.directory)
            guard short.contains(device) else { continue }
            found.append((place, temps))
            credit[device, default: 0] += temps.map(\.bytes).reduce(0, +)
        }
        guard !found.isEmpty else { return skip(&step, "no stale temp file of a killed run on a filesystem short of the target") }
        step.estimatedBytes = found.flatMap(\.1).map(\.bytes).reduce(0, +)
        let count = found.map(\.1.count).reduce(0, +)
        if options.dryRun { return plan(&step, "would remove \(count) stale temp file(s), \(Bytes.describe(step.estimatedBytes))") }
        for (place, _) in found {
            step.removed += SafeFiles.sweepTemps(in: place.directory, directories: place.directories, keep: TempSweep.pending(place, settings))
                .map { Paths.join(place.directory, $0) }
        }
        step.status = "done"
        step.detail = "removed \(step.removed.count) stale temp file(s) of killed runs"
    }

    // MARK: 4. safety copies and aside directories

    func leftovers(_ step: inout Step, short: Set<UInt64>, filesystems: inout [UInt64: Filesystem]) throws {
        let configured = try SafetyRetention(settings: settings)
        // The newest of each kind always stays, whatever safety_keep says.
        let retention = SafetyRetention(keep: max(configured.keep, 1), maxAgeSeconds: configured.maxAgeSeconds)
        let groups = try SafetyRetention.scan(places.retention).filter { $0.first?.kind != .incidentRecord }
        var removable = retention.plan(groups, now: Clock.now()).filter { !$0.keep }
        removable = try removable.filter { short.contains(try DiskFix.device(of: $0.item.path)) }
        removable.sort { ($0.item.createdUnix, $0.item.path) < ($1.item.createdUnix, $1.item.path) }
        guard !removable.isEmpty else {
            return skip(&step, "no safety copy or aside directory beyond safety_keep=\(retention.keep) and safety_max_age=\(settings[Setting.safetyMaxAge.key].text) on a filesystem short of the target (the newest of each always stays)")
        }
        try removeOldestFirst(&step, removable.map { ($0.item.path, $0.item.bytes, $0.rule) }, filesystems: &filesystems) { path in
            try retention.apply(removable.filter { $0.item.path == path })
        }
    }

    // MARK: 5. backups

    func backups(_ step: inout Step, short: Set<UInt64>, filesystems: inout [UInt64: Filesystem]) throws {
        let directory = places.backupDir
        guard try FileStatus.of(directory)?.isDirectory == true else { return skip(&step, "no backup directory at \(directory)") }
        guard short.contains(try DiskFix.device(of: directory)) else { return skip(&step, "\(directory) is on a filesystem that meets the target") }
        guard FileLock.readOnlyReason(directory) == nil else { return skip(&step, "\(directory) is read-only: nothing is removed there") }
        if !options.dryRun {
            let recovery = Catalog.recover(directory)
            for line in recovery.summary { events.info(line) }
            outcome.warnings += recovery.problems
        }
        let policy = RetentionPolicy.emergency(keepMinVerified: try settings.value(.keepMinVerified), includeManual: options.includeManual)
        let catalog = try Catalog.scan(directory)
        let decisions = try policy.plan(catalog, now: Clock.now())
        // Oldest first: the catalog is newest first.
        let removable = decisions.filter { !$0.keep }.reversed().map { decision -> (String, Int64, String) in
            let entry = catalog.entry(named: decision.name)
            return (Paths.join(directory, decision.name), (entry?.status?.allocatedBytes ?? 0), decision.rule)
        }
        let floor = "keep_min_verified=\(policy.keepMinVerified)\(options.includeManual ? "" : "; manual backups are never removed without --include-manual")"
        guard !removable.isEmpty else { return skip(&step, "every backup is within the floor (\(floor))") }
        try removeOldestFirst(&step, removable, filesystems: &filesystems) { path in
            try policy.apply(decisions.filter { Paths.join(directory, $0.name) == path }, in: directory).map { Paths.join(directory, $0) }
        }
        if !options.dryRun, !step.removed.isEmpty { try Catalog.writeSums(directory) }
        step.detail += " (floor: \(floor))"
    }

    /// Removes `items` (path, bytes, why) one at a time, oldest first, measuring after each
    /// and stopping when every filesystem meets the target. A dry run counts them down against
    /// the estimate instead.
    func removeOldestFirst(_ step: inout Step, _ items: [(path: String, bytes: Int64, rule: String)],
                           filesystems: inout [UInt64: Filesystem], remove: (String) throws -> [String]) throws {
        for item in items {
            if options.dryRun {
                guard !short(filesystems).isEmpty else { break }
                filesystems[try DiskFix.device(of: item.path)]?.credit(item.bytes)
                step.estimatedBytes += item.bytes
                step.removed.append(item.path)
                continue
            }
            guard !short(filesystems).isEmpty else { break }
            step.removed += try remove(item.path)
            step.estimatedBytes += item.bytes
            filesystems = try measure()
        }
        let what = "\(step.removed.count) of \(items.count) removable, oldest first"
        if options.dryRun {
            plan(&step, "would remove \(what), \(Bytes.describe(step.estimatedBytes)): \(step.removed.map(Paths.basename).joined(separator: ", "))")
        } else {
            step.status = "done"
            step.detail = "removed \(what)" + (step.removed.isEmpty ? "" : ": \(step.removed.map(Paths.basename).joined(separator: ", "))")
        }
    }

    // MARK: 6. vacuum

    func vacuum(_ step: inout Step, short: Set<UInt64>) throws {
        let database = places.database
        let device = try DiskFix.device(of: database)
        guard short.contains(device) else { return skip(&step, "the database is on a filesystem that meets the target") }
        let space: DatabaseSpace
        do {
            space = try DatabaseSpace.read(database)
        } catch let error as AbathurError {
            return skip(&step, "the database could not be read: \(error.description)")
        }
        let vacuum = try DiskReport.vacuum(space, places: places)
        guard vacuum.method != "none" else { return skip(&step, vacuum.detail) }
        step.estimatedBytes = vacuum.reclaimableBytes
        guard vacuum.fits else {
            step.status = "refused"
            step.detail = "\(vacuum.detail); the database was not opened"
            outcome.vacuumPlan = try alternativePlan(space)
            return
        }
        if options.dryRun {
            credit[device] = vacuum.reclaimableBytes
            let units = options.units.names.isEmpty ? "with no units to stop" : "with \(options.units.names.joined(separator: " ")) stopped"
            return plan(&step, "would run \(vacuum.method == "vacuum" ? "VACUUM" : "PRAGMA incremental_vacuum") \(units), then wal_checkpoint(TRUNCATE): \(vacuum.detail)")
        }
        let wal = DatabaseFiles(database).wal
        if try FileStatus.of(wal)?.isRegular == true, let loss = try WALInspection.inspectConfirmed(wal).lossDescription {
            throw AbathurError(.walLoss, wal, "\(loss); a VACUUM would make that loss permanent, so none was run (see 'abathur-walfix repair')")
        }
        let sql = vacuum.method == "vacuum" ? "VACUUM" : "PRAGMA incremental_vacuum"
        try Signals.ignoringTermination {
            let managed = !options.units.names.isEmpty
            // Started again whatever happens, a stop that failed halfway included.
            defer {
                if managed {
                    do { _ = try options.units.start() } catch {
                        outcome.warnings.append("the units did not start again: \(error); start them by hand (systemctl start \(options.units.names.joined(separator: " ")))")
                    }
                }
            }
            if managed { _ = try options.units.stop() }
            let holders = try Holders.check(database).holders
            guard holders.isEmpty else {
                step.status = "refused"
                step.detail = "still in use: \(holders.map(\.description).joined(separator: "; ")); no VACUUM was run (stop it, or add it to services)"
                outcome.warnings.append("\(database): \(step.detail)")
                return
            }
            do {
                let connection = try Connection(path: database, mode: .readWrite, busyTimeoutMs: options.busyTimeoutMs)
                try connection.execute(sql)
                _ = try connection.checkpointTruncate()
            } catch let error as SQLiteError {
                step.status = "failed"
                step.detail = "\(sql) failed: \(error.message); SQLite rolled it back, the database is as it was"
                outcome.warnings.append("\(database): \(sql) failed: \(error.message)")
                return
            }
            step.status = "done"
            let units = managed ? "with \(options.units.names.joined(separator: " ")) stopped" : "with no units stopped (--no-services, or services is empty)"
            step.detail = "\(sql) \(units), then wal_checkpoint(TRUNCATE)"
        }
    }

    /// Stop the units, `VACUUM INTO` a file on a filesystem with room, restore that file:
    /// the plan that works when a VACUUM in place does not fit. Writes made between the copy
    /// and the swap would be lost, so the units stay stopped until the restore.
    func alternativePlan(_ space: DatabaseSpace) throws -> [String] {
        let vacuumed = space.logicalBytes - space.freelistBytes
        let needed = SpaceBudget.needed(vacuumed)
        let databaseDevice = try DiskFix.device(of: places.database)
        let elsewhere = try DiskReport.volumes(places, thresholds: thresholds)
            .filter { $0.filesystem.device != databaseDevice && $0.filesystem.freeBytes >= needed }
            .max { $0.filesystem.freeBytes < $1.filesystem.freeBytes }
        let target = elsewhere.map { Paths.join($0.paths[0], "abathur-vacuumed.db") } ?? "/PATH/ON/ANOTHER/FILESYSTEM/abathur-vacuumed.db"
        let units = options.units.names.joined(separator: " ")
        var plan: [String] = []
        if !units.isEmpty { plan.append("systemctl stop \(units)") }
        plan.append("sqlite3 -readonly '\(places.database)' \"VACUUM INTO '\(target)'\"    # needs \(Bytes.describe(needed)) free there\(elsewhere == nil ? "; no filesystem in this report has that much" : "")")
        plan.append("abathur-restore '\(target)'    # checks it, keeps a safety copy, swaps it in (needs \(Bytes.describe(needed)) free beside the database), starts the units")
        return plan
    }

    // MARK: helpers

    func skip(_ step: inout Step, _ why: String) {
        step.status = "skipped"
        step.detail = why
    }

    func plan(_ step: inout Step, _ what: String) {
        step.status = "would run"
        step.detail = what
    }
}

extension Filesystem {
    /// As if `bytes` more were free (a dry run's estimate).
    mutating func credit(_ bytes: Int64) {
        freeBytes += bytes
        freeBytesForRoot += bytes
    }
}
