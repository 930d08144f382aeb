/// `--dry-run`: what a restore would do, with the space it needs, and nothing changed.
public struct RestorePlan: Sendable, Encodable {
    /// Room one filesystem must have for a restore, a rollback included.
    public struct Space: Sendable, Encodable {
        public var directory: String
        public var neededBytes: Int64
        public var freeBytes: Int64
        public var enough: Bool
        /// What the bytes are for, for a diagnostic.
        public var purpose: String

        public var shortage: AbathurError? {
            enough ? nil : AbathurError(.noSpace, directory, "\(freeBytes) bytes free, the restore needs \(neededBytes) (\(purpose))")
        }

        /// Beside the database, the restored database and, should it roll back, the current
        /// one rebuilt; beside the backups, the safety copy of the current files and, for a
        /// rollback, one of the restored database. What `RestoreJob` checks before writing and
        /// `--dry-run` prints.
        public static func needed(for request: RestoreRequest, restoredBytes: Int64) throws -> [Space] {
            let current = try SafetyCopy.size(of: request.database)
            let directory = Paths.directory(of: request.database)
            let here = restoredBytes + current + (1 << 20)
            let hereFree = try SafeFiles.freeBytes(at: directory)
            var spaces = [Space(directory: directory, neededBytes: here, freeBytes: hereFree, enough: hereFree >= here,
                                purpose: "the restored database, and the current one rebuilt should it roll back")]
            if current > 0 {
                let root = try FileStatus.of(request.backupDir) != nil ? request.backupDir : Paths.directory(of: request.backupDir)
                let there = current + restoredBytes + (1 << 20)
                let free = try SafeFiles.freeBytes(at: root)
                spaces.append(Space(directory: request.safetyRoot, neededBytes: there, freeBytes: free, enough: free >= there,
                                    purpose: "the safety copies of the current database, and of the restored one should it roll back"))
            }
            return spaces
        }
    }

    public var source: ChosenSource
    public var database: String
    public var databaseExists: Bool
    /// Sizes of the database and the companions that exist now.
    public var currentFiles: [String: Int64]
    public var space: [Space]
    public var units: [String]
    public var healthCheck: String?
    public var steps: [String]

    public static func make(_ request: RestoreRequest) throws -> RestorePlan {
        let source = try ChosenSource.choose(request.source, backupDir: request.backupDir, force: request.force)
        let database = request.database
        var files: [String: Int64] = [:]
        for suffix in SafetyCopy.suffixes {
            if let status = try FileStatus.of(database + suffix) { files[Paths.basename(database) + suffix] = status.size }
        }
        let directory = Paths.directory(of: database)
        let safety = try SafetyCopy.size(of: database)
        let units = request.services
        let health = units.isEmpty ? nil : request.health.map { "\($0.target) (\($0.retries) attempts, \(Duration.describe($0.interval)) apart)" }
        var steps = [
            "lock \(Paths.join(request.backupDir, Catalog.lockName)) and \(FileLock.path(forDatabase: database))",
            "decompress \(source.path ?? "stdin") into \(directory)" + (source.manifest == nil ? "" : " and compare its sha256 with the manifest"),
            "check the candidate: header, \(request.check.quick ? "quick_check" : "integrity_check"), foreign_key_check, schema, application_id/user_version"
                + (source.manifest == nil ? "" : ", row counts against the manifest"),
            units.isEmpty ? "stop no units" : "systemctl stop \(units.joined(separator: " "))",
            "prove nothing holds \(database), -wal, -shm (/proc/*/fd, POSIX locks, SQLite exclusive-lock probe)",
            safety > 0 ? "safety copy of \(files.keys.sorted().joined(separator: ", ")) into \(request.safetyRoot)/" : "no safety copy: \(database) does not exist",
            "settle the old database (checkpoint its WAL), move what is left of -wal/-shm/-journal aside, rename the candidate over \(database)",
            "post-check: the file reads back with the candidate's sha256, SQLite opens it, schema and row counts as checked",
        ]
        if !units.isEmpty { steps.append("systemctl start \(units.joined(separator: " "))") }
        if let health { steps.append("health check \(health)") } else if request.health != nil { steps.append("no health check: this run starts no units") }
        steps.append("on a failed post-check or health check: roll back to the safety copy the same way, start the units, exit 3")
        return RestorePlan(
            source: source, database: database, databaseExists: files[Paths.basename(database)] != nil, currentFiles: files,
            space: try Space.needed(for: request, restoredBytes: try Candidate.estimatedSize(of: source)),
            units: units, healthCheck: health, steps: steps)
    }
}
