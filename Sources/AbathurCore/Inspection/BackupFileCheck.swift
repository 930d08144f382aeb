/// One check of a backup file (`NAME.db.gz`), for every tool that judges one: `abathur-backup
/// verify`, `abathur-integrity --backup` (and a `.gz` given by path), `abathur-restore
/// --dry-run`. One verdict, so the three cannot disagree about a backup.
///
/// 1. the file: a regular file (missing: exit 8; a symlink or not a regular file: 7);
/// 2. the manifest: required for a backup of the catalog (without it the backup is
///    incomplete: nothing proves it whole, a failure); its `.gz` size;
/// 3. the space for the inflated copy in `temp_dir`, before anything is written (exit 6);
/// 4. the inflation, held to the manifest's database size (more is a bad backup) or else to
///    the space budget, hashing the `.gz` and the database as the bytes pass (gzip CRC-32 and
///    length: FACTS.md 6);
/// 5. both SHA-256s and the database size against the manifest;
/// 6. the inflated copy inspected once (`DatabaseInspection`) and judged by admission
///    (`DatabaseCheck`: what a backup must satisfy, a foreign database refused), then against
///    the manifest's schema and row counts.
///
/// Every step that can run does, so the report says all that is wrong; the inflated copy is
/// removed before `run` returns. The backup is only read.
public struct BackupFileCheck: Sendable, Encodable {
    public struct Options: Sendable {
        /// Where the inflated copy goes: never the backup directory (a read-only share).
        public var tempDirectory: String
        public var database: DatabaseCheck.Options
        /// The temp file's tag, which says which tool left it.
        public var tag: String
        public init(tempDirectory: String, database: DatabaseCheck.Options, tag: String) {
            self.tempDirectory = tempDirectory
            self.database = database
            self.tag = tag
        }
    }

    /// The backup's file name.
    public var name: String
    public var ok: Bool { failures.isEmpty }
    /// Every problem found, in the order of the steps.
    public var problems: [String] { failures.map(\.message) }
    /// `gzip`, then the inflated database's admission checks.
    public var checks: [Manifest.Check] = []

    public var path: String
    public var manifest: Manifest?
    /// Each problem with the code it stands for (SPEC.md, "which input gets which code").
    public private(set) var failures: [AbathurError] = []
    /// The file itself is missing or not a regular file: nothing else was looked at.
    public private(set) var fileProblem: AbathurError?
    /// Why the stream did not inflate (a corrupt, truncated or oversized stream).
    public private(set) var gzipProblem: String?
    public private(set) var digest: GzipDigest?
    /// The manifest against the file: missing, its size, its hashes, its schema.
    public private(set) var manifestProblems: [String] = []
    /// Set for a `.gz` given by path without a manifest beside it: checked, but not compared.
    public private(set) var manifestNote: String?
    /// The inflated database, as read.
    public private(set) var inspection: DatabaseInspection?
    /// Why the inflated bytes are not a database that can be examined at all.
    public private(set) var databaseProblem: String?
    /// Admission's judgement of the inflated database.
    public private(set) var admission: DatabaseCheck?

    /// The exit code of the verdict: 0 when it passed, else the most severe problem's.
    public var exitCode: ExitCode { ExitCode.mostSevere(failures.map(\.exitCode)) }

    /// Worth telling about a backup that passed: its manifest says it failed a check when it
    /// was taken (a snapshot that lacks commits the live WAL held). Intact as stored, so not a
    /// failure here; `abathur-restore` does not choose it by name.
    public var unverifiedWhenTaken: String? {
        guard let manifest, !manifest.verified else { return nil }
        return "stored intact, but not verified when taken: " + (manifest.walLoss.map { "\($0.detail); the snapshot lacks them" } ?? "a check failed")
    }

    /// The verdict as one error naming the backup, nil when it passed.
    public var failure: AbathurError? {
        guard let worst = failures.first(where: { $0.exitCode == exitCode }) else { return nil }
        return AbathurError(worst.kind, path, problems.joined(separator: "; "))
    }

    enum CodingKeys: String, CodingKey { case name, ok, problems, checks }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(ok, forKey: .ok)
        try container.encode(problems, forKey: .problems)
        try container.encode(checks, forKey: .checks)
    }

    init(path: String, manifest: Manifest?) {
        self.path = path
        self.name = Paths.basename(path)
        self.manifest = manifest
    }

    private mutating func fail(_ kind: AbathurError.Kind, _ message: String) {
        failures.append(AbathurError(kind, path, message))
    }

    private mutating func manifestFails(_ message: String, kind: AbathurError.Kind = .damagedBackup) {
        manifestProblems.append(message)
        fail(kind, message)
    }

    /// Checks the backup at `path` against `manifest`. `manifestProblem` says why a catalog
    /// entry has none (unreadable); with `requireManifest` a missing manifest is a failure.
    /// Throws only what stops the check itself: no space for the inflated copy (exit 6), an
    /// unreadable temp directory, an I/O error.
    public static func run(_ path: String, manifest: Manifest?, manifestProblem: String? = nil, requireManifest: Bool,
                           options: Options) throws -> BackupFileCheck {
        var check = BackupFileCheck(path: path, manifest: manifest)
        guard let status = try FileStatus.of(path) else {
            check.fileProblem = AbathurError(.notFound, path, "no such file")
            check.failures.append(check.fileProblem!)
            return check
        }
        guard status.isRegular else {
            check.fileProblem = AbathurError(.unsafePath, path, status.isSymlink ? "is a symlink, not a backup" : "not a regular file")
            check.failures.append(check.fileProblem!)
            return check
        }
        if let manifest {
            if manifest.gz.bytes != status.size { check.manifestFails("size \(status.size) bytes, manifest says \(manifest.gz.bytes)") }
        } else if requireManifest || manifestProblem != nil {
            check.manifestFails(manifestProblem.map { "no usable manifest: \($0)" }
                                ?? "incomplete backup: no manifest (a backup was interrupted while publishing it), so nothing proves it whole",
                                kind: .incompleteBackup)
        } else {
            check.manifestNote = "no manifest beside it: hashes not compared"
        }

        let budget = try SpaceBudget.of(options.tempDirectory)
        let estimate = try manifest?.database.bytes ?? GzipFile.estimatedInflatedSize(of: path)
        try budget.require(estimate + (1 << 20), for: "inflating \(path)")
        let limit = manifest.map(InflationLimit.manifest) ?? .budget(budget, reserving: 1 << 20)
        let temp = try SafeFiles.createTemp(in: options.tempDirectory, tag: options.tag)
        defer { SafeFiles.removeQuietly(temp.path) }
        let digest: GzipDigest
        do {
            digest = try GzipFile.decompress(from: try FileDescriptor.openForReading(path), to: temp, limit: limit)
            try temp.close()
        } catch let error as AbathurError where error.kind == .damagedBackup {
            check.gzipProblem = error.message
            check.fail(.damagedBackup, error.message)
            return check
        }
        check.digest = digest
        check.checks.append(Manifest.Check(name: "gzip", ok: true, detail: "CRC-32 and length ok"))
        if let manifest {
            if digest.gzSHA256 != manifest.gz.sha256 {
                check.manifestFails("sha256 of the .gz is \(digest.gzSHA256), manifest says \(manifest.gz.sha256)")
            }
            if digest.rawSHA256 != manifest.database.sha256 || digest.rawBytes != manifest.database.bytes {
                check.manifestFails("the database inflates to \(digest.rawBytes) bytes with sha256 \(digest.rawSHA256), manifest says \(manifest.database.bytes) bytes, \(manifest.database.sha256)")
            }
        }
        try check.judgeDatabase(temp.path, options: options.database)
        return check
    }

    private mutating func judgeDatabase(_ copy: String, options: DatabaseCheck.Options) throws {
        do {
            let inspection = try DatabaseInspection.file(copy, options: options.inspection, busyTimeoutMs: options.busyTimeoutMs)
            self.inspection = inspection
            let report = try DatabaseCheck.judge(inspection, options: options)
            admission = report
            checks += report.checks
            for failed in report.checks where !failed.ok { fail(.damagedBackup, "\(failed.name): \(failed.detail)") }
            if let foreign = report.foreign { fail(.foreign, foreign) }
            if let manifest {
                if let schema = report.schemaDifference(from: manifest) { manifestFails(schema) }
                if let counts = report.rowCountDifference(from: manifest) { fail(.damagedBackup, counts) }
            }
        } catch let error as AbathurError where error.kind == .corrupt || error.kind == .notADatabase {
            // The inflated bytes are the backup's: their damage is a bad backup (exit 3).
            databaseProblem = error.message
            fail(.damagedBackup, error.message)
        }
    }
}
