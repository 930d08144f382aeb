/// `abathur-diskcheck`'s report (issue 12): every filesystem that holds the database, the
/// backups, the safety copies, `temp_dir` or SQLite's temp directory, counted once each and
/// judged by the thresholds; what the database, the backups and what restores left take;
/// whether the next backup and a VACUUM fit; and how fast the database grows. Only reads:
/// nothing is opened with SQLite, nothing is written (the reserve is the caller's).
public struct DiskReport: Sendable, Encodable {
    /// One filesystem, what it holds, and how full it is.
    public struct Volume: Sendable, Encodable {
        public var filesystem: Filesystem
        /// `database`, `backups`, `safety copies`, `temp_dir`, `SQLite temp directory`.
        public var roles: [String]
        /// The paths it was found by, one per role.
        public var paths: [String]
        public var usedPercent: Double
        public var inodesUsedPercent: Double?
        public var level: DiskThresholds.Level
        public var findings: [DiskThresholds.Finding]
    }

    public struct Usage: Sendable, Encodable, Equatable {
        public var count = 0
        public var bytes: Int64 = 0
    }

    public struct Backups: Sendable, Encodable {
        public var directory: String
        /// Every backup of ours (with its manifest), and those complete and verified.
        public var count: Int
        public var complete: Int
        public var bytes: Int64
        public var oldest: String?
        public var oldestCreated: String?
        public var newest: String?
        public var newestCreated: String?
    }

    /// What one write needs, where, and whether it fits.
    public struct Need: Sendable, Encodable {
        public var directory: String
        public var device: UInt64
        public var neededBytes: Int64
        public var freeBytes: Int64
        public var fits: Bool
    }

    public struct NextBackup: Sendable, Encodable {
        /// The size of the newest verified backup (`.gz`): what the next one will about keep.
        public var expectedBytes: Int64?
        /// What the backup's preflight requires free (snapshot plus worst-case `.gz`).
        public var need: Need?
        public var detail: String
    }

    public struct Vacuum: Sendable, Encodable {
        /// `vacuum`, `incremental_vacuum` (auto_vacuum=INCREMENTAL), or `none` (nothing to reclaim).
        public var method: String
        public var reclaimableBytes: Int64
        /// Free space needed per filesystem, a shared one counted once (FACTS.md 13).
        public var needs: [Need]
        public var fits: Bool
        public var detail: String
    }

    public struct StaleTemps: Sendable, Encodable {
        public var directory: String
        public var count: Int
        public var bytes: Int64
        public var names: [String]
    }

    public var volumes: [Volume]
    public var thresholds: DiskThresholds
    public var database: DatabaseSpace?
    /// Why the database could not be read (missing, not SQLite); the rest is reported anyway.
    public var databaseProblem: Problem?

    /// An error that did not stop the report: its exit code and its diagnostic.
    public struct Problem: Sendable, Encodable {
        public var kind: AbathurError.Kind
        public var path: String?
        public var message: String
        public var error: AbathurError { AbathurError(kind, path, message) }

        init(_ error: AbathurError) {
            kind = error.kind
            path = error.path
            message = error.message
        }
    }
    public var backups: Backups?
    public var safetyCopies = Usage()
    public var asideDirectories = Usage()
    public var incidentRecords = Usage()
    public var forensicCopies = Usage()
    public var staleTemps: [StaleTemps] = []
    public var reserve: Reserve?
    public var nextBackup: NextBackup
    public var vacuum: Vacuum
    public var growth: Growth?
    /// What needs attention besides the thresholds (a reserve that could not be kept, a backup
    /// that will not fit): each makes the report a warning at least.
    public var warnings: [String] = []

    /// The worst of the filesystems and the warnings.
    public var level: DiskThresholds.Level {
        max(volumes.map(\.level).max() ?? .ok, warnings.isEmpty ? .ok : .warning)
    }

    public var databaseVolume: Volume? { volumes.first { $0.roles.contains("database") } }

    /// The places the report looks at, from the settings.
    public struct Places: Sendable {
        public var database: String
        public var backupDir: String
        public var tempDir: String
        public var sqliteTempDir: String
        public var retention: SafetyRetention.Places

        public init(settings: Settings) {
            database = settings.string(.database)
            backupDir = settings.string(.backupDir)
            tempDir = settings.string(.tempDir)
            sqliteTempDir = SQLiteTempDirectory.resolve()
            retention = SafetyRetention.Places(settings: settings)
        }

        /// Each role and the path it is found by. The safety root beside the database counts
        /// only when it exists (its filesystem is the database's).
        var roles: [(role: String, path: String)] {
            var roles = [("database", Paths.directory(of: database)), ("backups", backupDir)]
            for root in retention.safetyRoots where root.hasPrefix(backupDir) || (try? FileStatus.of(root)) != nil {
                roles.append(("safety copies", root))
            }
            if !tempDir.isEmpty { roles.append(("temp_dir", tempDir)) }
            roles.append(("SQLite temp directory", sqliteTempDir))
            return roles
        }
    }

    /// The filesystems of `places`, once each, in the order first met.
    public static func volumes(_ places: Places, thresholds: DiskThresholds) throws -> [Volume] {
        var volumes: [Volume] = []
        for (role, path) in places.roles {
            let filesystem = try Filesystem.holding(path)
            if let index = volumes.firstIndex(where: { $0.filesystem.device == filesystem.device }) {
                if !volumes[index].roles.contains(role) {
                    volumes[index].roles.append(role)
                    volumes[index].paths.append(path)
                }
                continue
            }
            let findings = thresholds.evaluate(filesystem)
            volumes.append(Volume(filesystem: filesystem, roles: [role], paths: [path], usedPercent: filesystem.usedPercent,
                                  inodesUsedPercent: filesystem.inodesUsedPercent,
                                  level: findings.map(\.level).max() ?? .ok, findings: findings))
        }
        return volumes
    }

    /// Looks at everything; throws only when a filesystem itself cannot be read.
    public static func make(_ places: Places, settings: Settings, thresholds: DiskThresholds, now: Double = Clock.now()) throws -> DiskReport {
        let volumes = try volumes(places, thresholds: thresholds)
        var database: DatabaseSpace?
        var problem: Problem?
        do {
            database = try DatabaseSpace.read(places.database)
        } catch let error as AbathurError {
            problem = Problem(error)
        }
        var report = DiskReport(volumes: volumes, thresholds: thresholds, database: database, databaseProblem: problem,
                                backups: nil, nextBackup: NextBackup(expectedBytes: nil, need: nil, detail: ""),
                                vacuum: Vacuum(method: "none", reclaimableBytes: 0, needs: [], fits: false, detail: ""))
        let catalog = try FileStatus.of(places.backupDir)?.isDirectory == true ? try Catalog.scan(places.backupDir) : nil
        if let catalog { report.backups = backups(catalog) }
        for item in try SafetyRetention.scan(places.retention).joined() { report.add(item) }
        for item in try SafetyRetention.forensicCopies(places.retention) { report.add(item) }
        report.staleTemps = TempSweep.stale(settings).map { place, temps in
            StaleTemps(directory: place.directory, count: temps.count, bytes: temps.map(\.bytes).reduce(0, +), names: temps.map(\.name))
        }
        report.nextBackup = try nextBackup(database, newest: catalog?.complete.first?.manifest, backupDir: places.backupDir)
        report.vacuum = try vacuum(database, places: places)
        if let free = report.databaseVolume?.filesystem.freeBytes {
            report.growth = Growth.estimate((catalog?.complete ?? []).compactMap(\.manifest), now: now, freeBytes: free)
        }
        if let need = report.nextBackup.need, !need.fits { report.warnings.append("the next backup will not fit: \(report.nextBackup.detail)") }
        return report
    }

    mutating func add(_ item: SafetyRetention.Item) {
        switch item.kind {
        case .safetyCopy: safetyCopies.add(item.bytes)
        case .asideDirectory: asideDirectories.add(item.bytes)
        case .incidentRecord: incidentRecords.add(item.bytes)
        case .forensicCopy: forensicCopies.add(item.bytes)
        }
    }

    static func backups(_ catalog: Catalog) -> Backups {
        let ours = catalog.entries.filter { $0.status?.isRegular == true }
        let bytes = ours.map { ($0.status?.size ?? 0) + ((try? FileStatus.of($0.manifestPath))??.size ?? 0) }.reduce(0, +)
        let oldest = ours.last, newest = ours.first
        return Backups(directory: catalog.directory, count: ours.count, complete: catalog.complete.count, bytes: bytes,
                       oldest: oldest?.fileName, oldestCreated: oldest?.manifest?.created,
                       newest: newest?.fileName, newestCreated: newest?.manifest?.created)
    }

    /// The backup's own preflight rule (`BackupJob.spaceNeeded`) on the database as it is now.
    static func nextBackup(_ database: DatabaseSpace?, newest: Manifest?, backupDir: String) throws -> NextBackup {
        guard let database else { return NextBackup(expectedBytes: newest?.gz.bytes, need: nil, detail: "the database could not be read") }
        let estimate = max(database.mainBytes, database.logicalBytes) + database.walBytes
        let filesystem = try Filesystem.holding(backupDir)
        let needed = SpaceBudget.needed(BackupJob.spaceNeeded(estimate: estimate))
        let need = Need(directory: backupDir, device: filesystem.device, neededBytes: needed, freeBytes: filesystem.freeBytes,
                        fits: needed <= filesystem.freeBytes)
        let expected = newest.map { " (the newest backup, \($0.name), is \(Bytes.describe($0.gz.bytes)))" } ?? ""
        return NextBackup(expectedBytes: newest?.gz.bytes, need: need,
                          detail: "needs \(Bytes.describe(needed)) free in \(backupDir) (a \(Bytes.describe(estimate)) snapshot plus a worst-case .gz), \(Bytes.describe(filesystem.freeBytes)) free\(expected)")
    }

    /// FACTS.md 13: a VACUUM writes a copy of the database in SQLite's temp directory and as
    /// much again into the `-wal` beside it; an incremental vacuum moves at most the pages it
    /// frees, each with its parent and pointer-map page, through the `-wal`.
    static func vacuum(_ database: DatabaseSpace?, places: Places) throws -> Vacuum {
        guard let database else { return Vacuum(method: "none", reclaimableBytes: 0, needs: [], fits: false, detail: "the database could not be read") }
        guard database.freelistPages > 0 else {
            return Vacuum(method: "none", reclaimableBytes: 0, needs: [], fits: true, detail: "the freelist is empty: a VACUUM would reclaim nothing")
        }
        let directory = Paths.directory(of: places.database)
        var writes: [(String, Int64)]
        let method: String
        if database.autoVacuum == .incremental {
            method = "incremental_vacuum"
            writes = [(directory, min(database.logicalBytes, 3 * database.freelistBytes))]
        } else {
            method = "vacuum"
            writes = [(places.sqliteTempDir, database.logicalBytes), (directory, database.logicalBytes)]
        }
        var needs: [Need] = []
        for (path, bytes) in writes {
            let filesystem = try Filesystem.holding(path)
            if let index = needs.firstIndex(where: { $0.device == filesystem.device }) {
                needs[index].neededBytes += bytes
                needs[index].fits = needs[index].neededBytes <= needs[index].freeBytes
            } else {
                let needed = SpaceBudget.needed(bytes)
                needs.append(Need(directory: path, device: filesystem.device, neededBytes: needed, freeBytes: filesystem.freeBytes,
                                  fits: needed <= filesystem.freeBytes))
            }
        }
        let fits = needs.allSatisfy(\.fits)
        let where_ = needs.map { "\(Bytes.describe($0.neededBytes)) in \($0.directory) (\(Bytes.describe($0.freeBytes)) free)" }.joined(separator: ", ")
        return Vacuum(method: method, reclaimableBytes: database.freelistBytes, needs: needs, fits: fits,
                      detail: "\(method == "vacuum" ? "VACUUM" : "PRAGMA incremental_vacuum") would reclaim about \(Bytes.describe(database.freelistBytes)) and needs \(where_): \(fits ? "fits" : "does not fit")")
    }
}

extension DiskReport.Usage {
    mutating func add(_ bytes: Int64) {
        count += 1
        self.bytes += bytes
    }
}
