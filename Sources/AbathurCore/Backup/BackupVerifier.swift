/// Re-checks stored backups: the manifest, the `.gz` (gzip CRC and SHA-256), the inflated
/// database (hash, checks, schema, row counts) against what the manifest recorded.
public struct BackupVerifier {
    public struct Result: Sendable, Encodable {
        public var name: String
        public var ok: Bool
        public var problems: [String]
        public var checks: [Manifest.Check]
    }

    /// Where the inflated copies are checked (`temp_dir`): never the backup directory, which
    /// may be a read-only share.
    let tempDirectory: String
    let options: DatabaseCheck.Options

    public init(tempDirectory: String, options: DatabaseCheck.Options) {
        self.tempDirectory = tempDirectory
        self.options = options
    }

    /// Reads the backup and writes only a temp file in `tempDirectory`, held to the manifest's
    /// database size (a stream that inflates past it is a bad backup) and to the space budget.
    public func verify(_ entry: Catalog.Entry) throws -> Result {
        var result = Result(name: entry.fileName, ok: false, problems: [], checks: [])
        guard let status = entry.status else {
            result.problems.append("the .db.gz is missing")
            return result
        }
        guard status.isRegular else {
            result.problems.append(status.isSymlink ? "is a symlink, not a backup" : "not a regular file")
            return result
        }
        guard let manifest = entry.manifest else {
            result.problems.append(entry.manifestProblem ?? "no manifest (an incomplete backup)")
            return result
        }
        if manifest.gz.bytes != status.size {
            result.problems.append("size \(status.size) bytes, manifest says \(manifest.gz.bytes)")
        }
        try SpaceBudget.of(tempDirectory).require(manifest.database.bytes + (1 << 20), for: "inflating \(entry.fileName)")

        let temp = try SafeFiles.createTemp(in: tempDirectory, tag: "verify.db")
        defer { SafeFiles.removeQuietly(temp.path) }
        let digest: GzipDigest
        do {
            digest = try GzipFile.decompress(from: try FileDescriptor.openForReading(entry.path), to: temp, limit: .manifest(manifest))
            try temp.close()
        } catch let error as AbathurError where error.kind == .damagedBackup {
            result.problems.append(error.message)
            return result
        }
        result.checks.append(Manifest.Check(name: "gzip", ok: true, detail: "CRC-32 and length ok"))
        if digest.gzSHA256 != manifest.gz.sha256 {
            result.problems.append("sha256 of the .gz is \(digest.gzSHA256), manifest says \(manifest.gz.sha256)")
        }
        if digest.rawSHA256 != manifest.database.sha256 {
            result.problems.append("sha256 of the database is \(digest.rawSHA256), manifest says \(manifest.database.sha256)")
        }
        do {
            let report = try DatabaseCheck.run(path: temp.path, options: options)
            result.checks += report.checks
            for failed in report.checks where !failed.ok { result.problems.append("\(failed.name): \(failed.detail)") }
            if report.schema.sha256 != manifest.schema.sha256 { result.problems.append("schema differs from the manifest") }
            if report.rowCounts != manifest.rowCounts { result.problems.append("row counts differ from the manifest") }
        } catch let error as AbathurError where error.kind == .corrupt || error.kind == .notADatabase {
            result.problems.append(error.message)
        }
        result.ok = result.problems.isEmpty
        return result
    }
}
