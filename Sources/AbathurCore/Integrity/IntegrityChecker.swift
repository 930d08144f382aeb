/// The checks of `abathur-integrity` (SPEC.md): each one a finding with a severity and its
/// evidence, run on the live database without disturbing it, on a database file, or on a
/// backup.
public struct IntegrityChecker {
    let options: IntegrityOptions

    public init(options: IntegrityOptions) {
        self.options = options
    }

    /// Checks a database file in place (`kind` .live or .file). Nothing is created or written
    /// next to it (`LiveReader`); a missing path is a finding, never a new empty database.
    /// `reference` is the newest backup's manifest, for the row-count comparison; with
    /// `exact` the counts must equal it (a backup against its own manifest).
    public func checkDatabase(_ path: String, kind: TargetReport.Kind, reference: Manifest?, exact: Bool = false) throws -> TargetReport {
        var report = TargetReport(path: path, kind: kind)
        guard let status = try FileStatus.of(path) else {
            report.add("file", .critical, "no such file (not created)", exitCode: .ioError)
            return report
        }
        // A symlink to the database is fine; stat what it points at.
        let header: DatabaseHeader
        let fileSize: Int64
        do {
            (header, fileSize) = try DatabaseHeader.read(path, followSymlinks: true)
        } catch let error as AbathurError where error.kind == .notADatabase || error.exitCode == .refused {
            let unreadable = error.kind != .notADatabase
            report.add(unreadable ? "file" : "header", .critical, error.message, exitCode: unreadable ? error.exitCode : nil)
            return report
        }
        checkHeader(header, fileSize: fileSize, walPresent: try FileStatus.of(path + "-wal") != nil, into: &report)
        if report.severity == .critical { return report }
        if header.isWAL { try checkWAL(path + "-wal", pageSize: header.pageSize, into: &report) }
        do {
            try LiveReader.read(path, busyTimeoutMs: options.busyTimeoutMs, tempDirectory: options.tempDirectory) { db in
                try checkContents(db, into: &report, reference: reference, exact: exact)
            }
        } catch let error as SQLiteError {
            report.add(options.quick ? "quick_check" : "integrity_check", .critical, error.description)
        } catch let error as AbathurError where error.kind == .corrupt || error.kind == .notADatabase {
            report.add(options.quick ? "quick_check" : "integrity_check", .critical, error.message)
        }
        return report
    }

    /// Header sanity, from the raw bytes, before SQLite opens the file (`FileShape`, the rules
    /// every tool applies).
    func checkHeader(_ h: DatabaseHeader, fileSize: Int64, walPresent: Bool, into report: inout TargetReport) {
        var evidence = ["page size \(h.pageSize)", "file \(fileSize) bytes", "header page count \(h.pageCount)",
                        "freelist \(h.freelistCount) pages", "text encoding \(h.textEncoding)", "schema format \(h.schemaFormat)",
                        "format versions \(h.writeVersion)/\(h.readVersion)"]
        if !h.pageCountIsValid { evidence.append("page count in header not valid (written by an old SQLite)") }
        let problems = FileShape.problems(h, fileSize: fileSize, walPresent: walPresent)
        if problems.isEmpty {
            report.add("header", .ok, "page size \(h.pageSize), \(fileSize / Int64(h.pageSize)) pages on disk", evidence: evidence)
        } else {
            report.add("header", .critical, problems.joined(separator: "; "), evidence: evidence)
        }
    }

    func checkWAL(_ path: String, pageSize: Int, into report: inout TargetReport) throws {
        guard try FileStatus.of(path) != nil else {
            report.add("wal", .ok, "no WAL: everything is in the main file")
            return
        }
        let wal = try WALInspection.inspect(path)
        var evidence = ["\(wal.fileSize) bytes", "\(wal.framesInFile) frames", "\(wal.validFrames) valid",
                        "\(wal.committedFrames) committed in \(wal.commits) transactions", "\(wal.pagesTouched) pages touched"]
        if let problem = wal.headerProblem {
            if wal.droppedCommits > 0 {
                report.add("wal", .critical,
                           "WAL ignored by SQLite (\(problem)), yet \(wal.droppedCommits) commit frame(s) in it carry its salts: committed transactions SQLite will silently drop; run abathur-walfix before opening it",
                           evidence: evidence)
            } else {
                report.add("wal", wal.fileSize == 0 ? .ok : .warning, "WAL ignored by SQLite: \(problem)", evidence: evidence)
            }
            return
        }
        if wal.pageSize != pageSize {
            report.add("wal", .warning, "WAL page size \(wal.pageSize) differs from the database's \(pageSize): SQLite ignores it", evidence: evidence)
            return
        }
        if let invalid = wal.firstInvalidFrame {
            evidence.append("first invalid frame \(invalid): \(wal.invalidReason ?? "?")")
        }
        if wal.droppedCommits > 0 {
            report.add("wal", .critical,
                       "\(wal.droppedCommits) committed transaction(s) after invalid frame \(wal.firstInvalidFrame ?? 0) (\(wal.invalidReason ?? "")) would be silently dropped by SQLite; run abathur-walfix before opening it",
                       evidence: evidence)
        } else if wal.committedFrames > 0 {
            report.add("wal", .ok, "\(wal.committedFrames) committed frame(s) not yet checkpointed", evidence: evidence)
        } else {
            report.add("wal", .ok, "WAL holds no committed frames", evidence: evidence)
        }
    }

    /// Every check runs even when an earlier one hit corruption: a check that SQLite cannot
    /// finish becomes a critical finding of its own, with whatever it read before failing.
    func checkContents(_ db: Connection, into report: inout TargetReport, reference: Manifest?, exact: Bool) throws {
        func guarded(_ check: String, _ body: (inout TargetReport) throws -> Void) {
            do {
                try body(&report)
            } catch {
                report.add(check, .critical, "SQLite could not finish this check: \(error)")
            }
        }
        let pragma = options.quick ? "quick_check" : "integrity_check"
        // Read row by row: SQLite can report problems and then fail the statement with
        // SQLITE_CORRUPT; the rows before the failure are the evidence.
        var messages: [String] = []
        var failure: SQLiteError?
        do {
            let statement = try db.prepare("PRAGMA \(pragma)(\(options.maxErrors))")
            // One row can hold several lines, under a "*** in database main ***" heading.
            while try statement.step() {
                messages += (statement.text(at: 0) ?? "").split(separator: "\n").map(String.init)
                    .filter { !$0.hasPrefix("*** in database ") }
            }
        } catch {
            failure = error
        }
        if messages == ["ok"] && failure == nil {
            report.add(pragma, .ok, "ok")
        } else {
            if let failure { messages.append("stopped: \(failure.description)") }
            let more = messages.count >= options.maxErrors ? " (stopped at --max-errors \(options.maxErrors))" : ""
            report.add(pragma, .critical, "\(messages.count) problem(s)\(more): \(messages.first ?? "")", evidence: messages)
        }

        guarded("foreign_key_check") { report in
            let violations = try db.rows("PRAGMA foreign_key_check")
            if violations.isEmpty {
                report.add("foreign_key_check", .ok, "ok")
            } else {
                let evidence = violations.map { row in
                    "table \(row[0] ?? "?") rowid \(row[1] ?? "NULL") -> parent \(row[2] ?? "?") (constraint \(row[3] ?? "?"))"
                }
                report.add("foreign_key_check", .error, "\(violations.count) foreign-key violation(s)", evidence: evidence)
            }
        }

        var tables: [String] = []
        var virtual: Set<String> = []
        guarded("schema") { report in
            let objects = try db.rows("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
            tables = objects.filter { $0[0] == "table" && !($0[1] ?? "").hasPrefix("sqlite_") }.compactMap { $0[1] ?? nil }
            virtual = Set(objects.filter { ($0[2] ?? "")?.uppercased().hasPrefix("CREATE VIRTUAL TABLE") == true }.compactMap { $0[1] ?? nil })
            let indexes = objects.filter { $0[0] == "index" }.compactMap { $0[1] ?? nil }
            checkSchema(tables: tables, indexes: indexes, reference: exact ? nil : reference, into: &report)
        }

        guarded("user_version") { report in
            let userVersion = try db.integer("PRAGMA user_version")
            if let expected = options.expectUserVersion, expected != userVersion {
                report.add("user_version", .warning, "user_version \(userVersion), expected \(expected)")
            } else {
                report.add("user_version", .ok, "\(userVersion)")
            }
        }
        guarded("application_id") { report in
            let applicationId = try db.integer("PRAGMA application_id")
            if let expected = options.expectation.applicationId, expected != applicationId {
                report.add("application_id", .error, "application_id \(applicationId), expected \(expected): a foreign database", exitCode: .refused)
            } else {
                report.add("application_id", .ok, "\(applicationId)")
            }
        }

        guarded("row_counts") { report in
            var counts: [String: Int64] = [:]
            for table in tables where !virtual.contains(table) {
                counts[table] = try db.integer("SELECT count(*) FROM \"\(table.replacingAll("\"", with: "\"\""))\"")
            }
            compareCounts(counts, reference: reference, exact: exact, into: &report)
        }
    }

    func checkSchema(tables: [String], indexes: [String], reference: Manifest?, into report: inout TargetReport) {
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
        // Expected by name: the configured list, and every index the newest backup had.
        let named = Set(expectation.indexes).union(reference?.schema.indexes ?? [])
        let missingIndexes = named.filter { !indexes.contains($0) }.sorted()
        var indexProblems: [String] = []
        if indexes.count < expectation.minIndexes { indexProblems.append("\(indexes.count) indexes, expected at least \(expectation.minIndexes)") }
        if !missingIndexes.isEmpty {
            let since = reference.map { " (present in \($0.name))" } ?? ""
            indexProblems.append("missing index(es)\(since): \(missingIndexes.joined(separator: ", "))")
        }
        if indexProblems.isEmpty {
            report.add("indexes", .ok, "\(indexes.count) indexes", evidence: ["indexes: \(indexes.joined(separator: ", "))"])
        } else {
            // Data is intact without an index; queries are slow. A warning, not corruption.
            report.add("indexes", .warning, indexProblems.joined(separator: "; "), evidence: ["indexes: \(indexes.joined(separator: ", "))"])
        }
    }

    func compareCounts(_ counts: [String: Int64], reference: Manifest?, exact: Bool, into report: inout TargetReport) {
        let summary = counts.keys.sorted().map { "\($0) \(counts[$0]!)" }
        guard let reference else {
            report.add("row_counts", .ok, "\(counts.values.reduce(0, +)) rows (no backup to compare with)", evidence: summary)
            return
        }
        if exact {
            let differing = Set(counts.keys).union(reference.rowCounts.keys).sorted().filter { counts[$0] != reference.rowCounts[$0] }
            if differing.isEmpty {
                report.add("row_counts", .ok, "row counts equal the manifest's", evidence: summary)
            } else {
                let detail = differing.map { "\($0): manifest \(reference.rowCounts[$0].map(String.init) ?? "-"), found \(counts[$0].map(String.init) ?? "-")" }
                report.add("row_counts", .critical, "row counts differ from the manifest", evidence: detail)
            }
            return
        }
        var shrunk: [String] = []
        for (table, before) in reference.rowCounts.sorted(by: { $0.key < $1.key }) where before > 0 {
            let now = counts[table] ?? 0
            if Double(before - now) / Double(before) > options.shrinkWarning {
                shrunk.append("\(table): \(before) -> \(now)")
            }
        }
        if shrunk.isEmpty {
            report.add("row_counts", .ok, "no table shrank by more than \(Int(options.shrinkWarning * 100))% since \(reference.name)", evidence: summary)
        } else {
            report.add("row_counts", .warning, "shrank by more than \(Int(options.shrinkWarning * 100))% since \(reference.name): \(shrunk.joined(separator: "; "))",
                       evidence: summary)
        }
    }

    /// Checks a `.db.gz`: inflated to a temp file in `temp_dir` (gzip CRC and length), hashed
    /// and compared with its manifest when it has one, then checked as a database. The
    /// inflation is held to the manifest's database size (more is a bad backup), else to
    /// `temp_dir`'s space budget (exit 6), before it starts and as the bytes arrive.
    public func checkGzip(_ path: String, manifest: Manifest?, kind: TargetReport.Kind) throws -> TargetReport {
        var report = TargetReport(path: path, kind: kind)
        guard let status = try FileStatus.of(path) else {
            report.add("file", .critical, "no such file", exitCode: .ioError)
            return report
        }
        guard status.isRegular else {
            report.add("file", .critical, status.isSymlink ? "is a symlink, not a backup" : "not a regular file", exitCode: .refused)
            return report
        }
        let budget = try SpaceBudget.of(options.tempDirectory)
        let estimate = try manifest?.database.bytes ?? GzipFile.estimatedInflatedSize(of: path)
        try budget.require(estimate + (1 << 20), for: "inflating \(path)")
        let limit = manifest.map(InflationLimit.manifest) ?? .budget(budget, reserving: 1 << 20)
        let temp = try SafeFiles.createTemp(in: options.tempDirectory, tag: "integrity.db")
        defer { SafeFiles.removeQuietly(temp.path) }
        let digest: GzipDigest
        do {
            digest = try GzipFile.decompress(from: try FileDescriptor.openForReading(path), to: temp, limit: limit)
            try temp.close()
        } catch let error as AbathurError where error.kind == .damagedBackup {
            report.add("gzip", .critical, error.message)
            return report
        }
        report.add("gzip", .ok, "CRC-32 and length ok, \(digest.rawBytes) bytes inflated")
        if let manifest {
            var problems: [String] = []
            if digest.gzSHA256 != manifest.gz.sha256 { problems.append("sha256 of the .gz is \(digest.gzSHA256), manifest says \(manifest.gz.sha256)") }
            if digest.rawSHA256 != manifest.database.sha256 { problems.append("sha256 of the database is \(digest.rawSHA256), manifest says \(manifest.database.sha256)") }
            if problems.isEmpty {
                report.add("manifest", .ok, "sha256 of the .gz and of the database match the manifest")
            } else {
                report.add("manifest", .critical, problems.joined(separator: "; "))
            }
        } else {
            report.add("manifest", .warning, "no manifest beside it: hashes not compared")
        }
        var inner = try checkDatabase(temp.path, kind: .file, reference: manifest, exact: manifest != nil)
        // The inflated copy's checks belong to the backup.
        for index in inner.findings.indices where inner.findings[index].check == "file" { inner.findings[index].message += " (inflated copy)" }
        report.findings += inner.findings
        return report
    }
}
