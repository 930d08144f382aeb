/// Step 3 of a restore: the candidate must pass every check a backup passes (header,
/// integrity_check, foreign_key_check, the expected schema), be the same application as the
/// live database, and match its manifest's schema and row counts.
public struct CandidateCheck: Sendable {
    public var report: DatabaseCheck
    /// Worth telling, not worth refusing: a user_version that differs from the live one.
    public var warnings: [String]

    public var summary: String {
        "\(report.checks.map { "\($0.name) ok" }.joined(separator: ", ")); \(report.rowCounts.values.reduce(0, +)) rows in \(report.rowCounts.count) tables"
    }

    /// `source` names the candidate in diagnostics (the backup, not a temp file). `damaged`
    /// is the kind for a candidate that fails a check: a damaged backup (3), or a corrupt
    /// database when a database file is the source (4) (SPEC.md, "which input gets which code").
    public static func run(_ path: String, source: String, manifest: Manifest?, live: String?,
                           request: RestoreRequest, damaged: AbathurError.Kind = .damagedBackup) throws -> CandidateCheck {
        let report: DatabaseCheck
        do {
            report = try DatabaseCheck.run(path: path, options: request.check)
        } catch let error as AbathurError where error.kind == .notADatabase || error.kind == .corrupt {
            throw AbathurError(damaged, source, error.message)
        }
        return try judge(report, source: source, manifest: manifest, live: live, request: request, damaged: damaged)
    }

    /// The restore's rules over admission's judgement of the candidate (`report`): what
    /// `run` applies, and `--dry-run` to the backup it inflated into temp_dir.
    public static func judge(_ report: DatabaseCheck, source: String, manifest: Manifest?, live: String?,
                             request: RestoreRequest, damaged: AbathurError.Kind = .damagedBackup) throws -> CandidateCheck {
        // A foreign database is refused, not "failed verification".
        if let foreign = report.foreign { throw AbathurError(.foreign, source, foreign) }
        if let failed = report.failure {
            throw AbathurError(damaged, source, "\(failed.name) failed: \(failed.detail)")
        }
        var warnings: [String] = []
        let liveHeader = live.flatMap { try? DatabaseHeader.read($0, followSymlinks: true).header }

        if request.check.expectation.applicationId == nil, let liveHeader, liveHeader.applicationID != 0, Int64(Int32(bitPattern: liveHeader.applicationID)) != report.applicationId {
            throw AbathurError(.foreign, source, "foreign database: application_id \(report.applicationId), the live database has \(liveHeader.applicationID)")
        }
        if let expected = request.expectUserVersion {
            if report.userVersion != expected {
                throw AbathurError(.refused, source, "user_version \(report.userVersion), expected \(expected) (expect_user_version)")
            }
        } else if let liveHeader, Int64(Int32(bitPattern: liveHeader.userVersion)) != report.userVersion {
            warnings.append("\(source): user_version \(report.userVersion), the live database has \(liveHeader.userVersion): the service may migrate it when it starts")
        }

        if let manifest, let difference = report.schemaDifference(from: manifest) ?? report.rowCountDifference(from: manifest) {
            throw AbathurError(.damagedBackup, source, difference)
        }
        return CandidateCheck(report: report, warnings: warnings)
    }
}
