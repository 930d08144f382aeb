#if canImport(Glibc)
import Glibc
#endif

/// `--dry-run`: what a restore would do, with the space it needs, and the verdict on its
/// source (`SourceCheck`); nothing live is changed.
public struct RestorePlan: Sendable, Encodable {
    /// Room one filesystem must have for a restore, a rollback included.
    public struct Space: Sendable, Encodable {
        public var directory: String
        public var neededBytes: Int64
        public var freeBytes: Int64
        /// What the restore may take here: the free bytes, or, on the filesystem the candidate
        /// is inflated on, only what keeps it at or below 90% used (`SpaceBudget`).
        public var usableBytes: Int64
        public var enough: Bool
        /// What the bytes are for, for a diagnostic.
        public var purpose: String

        public var shortage: AbathurError? {
            guard !enough else { return nil }
            let cap = usableBytes < freeBytes
                ? "; at most \(usableBytes) may be used here, to keep the filesystem at or below \(SpaceBudget.maxUsedPercent)% used" : ""
            return AbathurError(.noSpace, directory, "\(freeBytes) bytes free, the restore needs \(neededBytes) (\(purpose))\(cap)")
        }

        /// Beside the database, the restored database and, should it roll back, the current
        /// one rebuilt, within the space budget (the service still runs there); in the safety
        /// root, the safety copy of the current files and, for a rollback, one of the restored
        /// database. One entry per filesystem: when the safety root shares the database's
        /// filesystem, both needs add up there. What `RestoreJob` checks before writing and
        /// `--dry-run` prints.
        public static func needed(for request: RestoreRequest, restoredBytes: Int64) throws -> [Space] {
            try needed(for: request, restoredBytes: restoredBytes, safetyRoot: request.safetyRoot)
        }

        static func needed(for request: RestoreRequest, restoredBytes: Int64, safetyRoot: String) throws -> [Space] {
            let current = try SafetyCopy.size(of: request.database)
            let directory = Paths.directory(of: request.database)
            let budget = try SpaceBudget.of(directory)
            var here = Space(directory: directory, neededBytes: restoredBytes + current + (1 << 20), freeBytes: budget.freeBytes,
                             usableBytes: budget.bytes, enough: true,
                             purpose: "the restored database, and the current one rebuilt should it roll back")
            var spaces: [Space] = []
            if current > 0 {
                let there = current + restoredBytes + (1 << 20)
                let purpose = "the safety copies of the current database, and of the restored one should it roll back"
                let root = existingAncestor(safetyRoot)
                if let a = device(root), let b = device(directory), a == b {
                    here.neededBytes += there
                    here.purpose += "; \(purpose) in \(safetyRoot)"
                } else {
                    let free = try SafeFiles.freeBytes(at: root)
                    spaces.append(Space(directory: safetyRoot, neededBytes: there, freeBytes: free, usableBytes: free, enough: free >= there,
                                        purpose: purpose))
                }
            }
            here.enough = here.neededBytes <= here.usableBytes
            return [here] + spaces
        }

        /// How far a candidate whose size no manifest records may inflate beside the
        /// database: what this preflight would have let through, checked as bytes arrive
        /// (gzip's ISIZE can lie; stdin has no size).
        public static func inflationLimit(for request: RestoreRequest, safetyRoot: String) throws -> InflationLimit {
            let none = try needed(for: request, restoredBytes: 0, safetyRoot: safetyRoot)[0]
            let perByte = try needed(for: request, restoredBytes: 1, safetyRoot: safetyRoot)[0].neededBytes - none.neededBytes
            let budget = try SpaceBudget.of(none.directory)
            return InflationLimit(bytes: max(0, (none.usableBytes - none.neededBytes) / max(1, perByte)), bound: .budget(budget))
        }

        /// The nearest directory of `path` that exists (a safety root is created on demand).
        static func existingAncestor(_ path: String) -> String {
            var existing = path
            while (try? FileStatus.of(existing)) == nil, existing != "/", existing != "." { existing = Paths.directory(of: existing) }
            return existing
        }

        static func device(_ path: String) -> UInt64? {
            var st = stat()
            return stat(path, &st) == 0 ? UInt64(st.st_dev) : nil
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
    /// The source checked as the restore will check it; set by `SourceCheck.run`.
    public var check: SourceCheck?

    public static func make(_ request: RestoreRequest) throws -> RestorePlan {
        let source = try ChosenSource.choose(request.source, backupDir: request.backupDir, force: request.force)
        let database = request.database
        var files: [String: Int64] = [:]
        for suffix in SafetyCopy.suffixes {
            if let status = try FileStatus.of(database + suffix) { files[Paths.basename(database) + suffix] = status.size }
        }
        let directory = Paths.directory(of: database)
        let safety = try SafetyCopy.size(of: database)
        let readOnly = FileLock.readOnlyReason(request.backupDir)
        let units = request.services
        let health = units.isEmpty ? nil : request.health.map { "\($0.target) (\($0.retries) attempts, \(Duration.describe($0.interval)) apart)" }
        var steps = [
            readOnly.map { "lock \(FileLock.path(forDatabase: database)); no lock in the backup directory: \($0), so nothing is written there" }
                ?? "lock \(Paths.join(request.backupDir, Catalog.lockName)) and \(FileLock.path(forDatabase: database))",
            "decompress \(source.path ?? "stdin") into \(directory)" + (source.manifest == nil
                ? ", stopping at the space budget (the filesystem stays at or below \(SpaceBudget.maxUsedPercent)% used)"
                : ", stopping at the manifest's \(source.manifest!.database.bytes) bytes, and compare its sha256 with the manifest"),
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

/// `--dry-run`'s verdict on the source: a backup inflated into `temp_dir` (the space checked
/// first) and checked by the one check of a backup file (`BackupFileCheck`), then held to the
/// restore's own rules (`CandidateCheck.judge`: the live database's application, the expected
/// user_version). The same verdict `abathur-backup verify` and `abathur-integrity --backup`
/// give; nothing live is touched, no lock is taken, the inflated copy is removed.
public struct SourceCheck: Sendable, Encodable {
    public var ok: Bool { failure == nil && skipped == nil }
    /// Why the source was not checked now (stdin, a raw database file, not a regular file).
    public var skipped: String?
    public var problems: [String] = []
    public var warnings: [String] = []
    public var checks: [Manifest.Check] = []
    /// The verdict as one error, with its code; nil when it passed or was skipped.
    public var failure: AbathurError?

    enum CodingKeys: String, CodingKey { case ok, skipped, problems, warnings, checks }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ok, forKey: .ok)
        try container.encodeIfPresent(skipped, forKey: .skipped)
        try container.encode(problems, forKey: .problems)
        try container.encode(warnings, forKey: .warnings)
        try container.encode(checks, forKey: .checks)
    }

    /// Throws only what stops the check itself (no room in temp_dir: exit 6; I/O).
    public static func run(_ source: ChosenSource, request: RestoreRequest) throws -> SourceCheck {
        guard let path = source.path else {
            return SourceCheck(skipped: "stdin is read once, by the restore itself, and checked then")
        }
        guard try FileStatus.of(path)?.isRegular == true else {
            return SourceCheck(skipped: "\(path) is not a regular file: checked when it is restored")
        }
        guard try GzipFile.isGzip(path) else {
            return SourceCheck(skipped: "\(path) is a database file, not a backup: checked when it is restored, its -wal or -journal folded in")
        }
        let file = try BackupFileCheck.run(path, manifest: source.manifest, requireManifest: false,
                                           options: BackupFileCheck.Options(tempDirectory: request.tempDir, database: request.check, tag: "dry-run.db"))
        var verdict = SourceCheck(problems: file.problems, checks: file.checks, failure: file.failure)
        guard verdict.failure == nil, let admission = file.admission else { return verdict }
        do {
            verdict.warnings = try CandidateCheck.judge(admission, source: path, manifest: source.manifest, live: request.database, request: request).warnings
        } catch let error as AbathurError {
            verdict.problems.append(error.message)
            verdict.failure = error
        }
        return verdict
    }
}
