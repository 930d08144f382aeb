/// The integrity judge: the findings, with severities and exit codes, that `abathur-integrity`
/// reports (SPEC.md) about one `DatabaseInspection`. Every fact is judged, those SQLite could
/// not read too: a check that SQLite could not finish is a critical finding of its own, with
/// whatever it read before failing.
///
/// Two standards. A database in place (`.inPlace`: the live one, a `.db` file) is compared
/// with the newest backup: a table that shrank is a warning, a missing index too (the data is
/// intact; queries are slow). A backup (`.backup`: its inflated copy against its own manifest)
/// is held to what `abathur-backup` admitted: its row counts must equal the manifest's, and an
/// expected index that is missing is an error, as it is for `DatabaseCheck`.
public struct IntegrityJudge {
    public enum Standard: Sendable {
        /// `reference` is the newest backup's manifest, if there is one.
        case inPlace(reference: Manifest?)
        case backup(Manifest)
    }

    let options: IntegrityOptions

    public init(options: IntegrityOptions) {
        self.options = options
    }

    /// Header sanity, from the raw bytes, before SQLite opens the file (`FileShape`, the rules
    /// every tool applies).
    func judgeHeader(_ inspection: DatabaseInspection, into report: inout TargetReport) {
        let h = inspection.header, fileSize = inspection.fileSize
        var evidence = ["page size \(h.pageSize)", "file \(fileSize) bytes", "header page count \(h.pageCount)",
                        "freelist \(h.freelistCount) pages", "text encoding \(h.textEncoding)", "schema format \(h.schemaFormat)",
                        "format versions \(h.writeVersion)/\(h.readVersion)"]
        if !h.pageCountIsValid { evidence.append("page count in header not valid (written by an old SQLite)") }
        if inspection.shapeProblems.isEmpty {
            report.add("header", .ok, "page size \(h.pageSize), \(fileSize / Int64(h.pageSize)) pages on disk", evidence: evidence)
        } else {
            report.add("header", .critical, inspection.shapeProblems.joined(separator: "; "), evidence: evidence)
        }
    }

    /// The findings about what SQLite said, in a fixed order: the structural check,
    /// foreign keys, schema and indexes, user_version, application_id, row counts.
    func judgeContents(_ contents: DatabaseInspection.Contents, standard: Standard, into report: inout TargetReport) {
        func unfinished(_ check: String, _ error: SQLiteError) {
            report.add(check, .critical, "SQLite could not finish this check: \(error)")
        }
        if let structure = contents.structure {
            if structure.ok {
                report.add(structure.pragma, .ok, "ok")
            } else {
                let messages = structure.messages + (structure.failure.map { ["stopped: \($0.description)"] } ?? [])
                let more = messages.count >= options.maxErrors ? " (stopped at --max-errors \(options.maxErrors))" : ""
                report.add(structure.pragma, .critical, "\(messages.count) problem(s)\(more): \(messages.first ?? "")", evidence: messages)
            }
        }
        switch contents.foreignKeys {
        case nil: break
        case .failure(let error)?: unfinished("foreign_key_check", error)
        case .success(let violations)? where violations.isEmpty: report.add("foreign_key_check", .ok, "ok")
        case .success(let violations)?:
            let evidence = violations.map {
                "table \($0.table ?? "?") rowid \($0.rowid ?? "NULL") -> parent \($0.parent ?? "?") (constraint \($0.constraint ?? "?"))"
            }
            report.add("foreign_key_check", .error, "\(violations.count) foreign-key violation(s)", evidence: evidence)
        }

        switch contents.schema {
        case .failure(let error): unfinished("schema", error)
        case .success(let schema): judgeSchema(schema, standard: standard, into: &report)
        }

        switch contents.userVersion {
        case .failure(let error): unfinished("user_version", error)
        case .success(let userVersion):
            if let expected = options.expectUserVersion, expected != userVersion {
                report.add("user_version", .warning, "user_version \(userVersion), expected \(expected)")
            } else {
                report.add("user_version", .ok, "\(userVersion)")
            }
        }
        switch contents.applicationId {
        case .failure(let error): unfinished("application_id", error)
        case .success(let applicationId):
            if let expected = options.expectation.applicationId, expected != applicationId {
                report.add("application_id", .error, "application_id \(applicationId), expected \(expected): a foreign database", exitCode: .refused)
            } else {
                report.add("application_id", .ok, "\(applicationId)")
            }
        }

        switch contents.rowCounts {
        case .failure(let error): unfinished("row_counts", error)
        case .success(let counts): judgeCounts(counts, standard: standard, into: &report)
        }
    }

    func judgeSchema(_ schema: DatabaseInspection.Schema, standard: Standard, into report: inout TargetReport) {
        let tables = schema.tables, indexes = schema.indexes
        let expectation = options.expectation
        let missingTables = expectation.tables.filter { !tables.contains($0) }
        let unexpected = expectation.tables.isEmpty ? [] : tables.filter { !expectation.tables.contains($0) }
        var tableEvidence = ["tables: \(tables.joined(separator: ", "))"]
        if !unexpected.isEmpty { tableEvidence.append("not in expect_tables: \(unexpected.joined(separator: ", "))") }
        if let foreign = expectation.foreignReason(tables: tables) {
            report.add("schema", .error, foreign, evidence: tableEvidence, exitCode: .refused)
        } else if missingTables.isEmpty {
            report.add("schema", .ok, "\(tables.count) tables, all \(expectation.tables.count) expected present", evidence: tableEvidence)
        } else {
            report.add("schema", .error, "missing table(s): \(missingTables.joined(separator: ", "))", evidence: tableEvidence)
        }
        // Expected by name: the configured list, and, in place, every index the newest backup had.
        var reference: Manifest?
        if case .inPlace(let newest) = standard { reference = newest }
        let named = Set(expectation.indexes).union(reference?.schema.indexes ?? [])
        let missingIndexes = named.filter { !indexes.contains($0) }.sorted()
        var indexProblems: [String] = []
        if indexes.count < expectation.minIndexes { indexProblems.append("\(indexes.count) indexes, expected at least \(expectation.minIndexes)") }
        if !missingIndexes.isEmpty {
            let since = reference.map { " (present in \($0.name))" } ?? ""
            indexProblems.append("missing index(es)\(since): \(missingIndexes.joined(separator: ", "))")
        }
        let evidence = ["indexes: \(indexes.joined(separator: ", "))"]
        if indexProblems.isEmpty {
            report.add("indexes", .ok, "\(indexes.count) indexes", evidence: evidence)
        } else if case .backup = standard {
            // A backup without them is not one `abathur-backup` admits (`DatabaseCheck`'s schema check).
            report.add("indexes", .error, indexProblems.joined(separator: "; ") + ": a backup must have them", evidence: evidence)
        } else {
            // Data is intact without an index; queries are slow. A warning, not corruption.
            report.add("indexes", .warning, indexProblems.joined(separator: "; "), evidence: evidence)
        }
    }

    func judgeCounts(_ counts: [String: Int64], standard: Standard, into report: inout TargetReport) {
        let summary = counts.keys.sorted().map { "\($0) \(counts[$0]!)" }
        switch standard {
        case .inPlace(nil):
            report.add("row_counts", .ok, "\(counts.values.reduce(0, +)) rows (no backup to compare with)", evidence: summary)
        case .backup(let manifest):
            let differing = Set(counts.keys).union(manifest.rowCounts.keys).sorted().filter { counts[$0] != manifest.rowCounts[$0] }
            if differing.isEmpty {
                report.add("row_counts", .ok, "row counts equal the manifest's", evidence: summary)
            } else {
                let detail = differing.map { "\($0): manifest \(manifest.rowCounts[$0].map(String.init) ?? "-"), found \(counts[$0].map(String.init) ?? "-")" }
                report.add("row_counts", .critical, "row counts differ from the manifest", evidence: detail)
            }
        case .inPlace(let reference?):
            var shrunk: [String] = []
            for (table, before) in reference.rowCounts.sorted(by: { $0.key < $1.key }) where before > 0 {
                let now = counts[table] ?? 0
                if Double(before - now) / Double(before) > options.shrinkWarning {
                    shrunk.append("\(table): \(before) -> \(now)")
                }
            }
            let limit = "\(Int(options.shrinkWarning * 100))%"
            if shrunk.isEmpty {
                report.add("row_counts", .ok, "no table shrank by more than \(limit) since \(reference.name)", evidence: summary)
            } else {
                report.add("row_counts", .warning, "shrank by more than \(limit) since \(reference.name): \(shrunk.joined(separator: "; "))",
                           evidence: summary)
            }
        }
    }
}
