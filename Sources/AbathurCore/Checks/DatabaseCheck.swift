/// The checks a backup must pass before it counts (SPEC.md, `abathur-backup`), run on a
/// database file that nothing else writes: the header read raw, then SQLite opened
/// read-only without create (FACTS.md 4), `integrity_check` or `quick_check`,
/// `foreign_key_check`, the expected schema, and row counts per table.
public struct DatabaseCheck: Sendable {
    public var checks: [Manifest.Check] = []
    public var header: DatabaseHeader
    public var fileSize: Int64
    public var schema: Manifest.Schema
    public var rowCounts: [String: Int64] = [:]
    public var pageSize: Int
    public var pageCount: Int64
    public var freelistCount: Int64
    public var userVersion: Int64
    public var applicationId: Int64

    /// Set when the file is a healthy SQLite database of another application
    /// (`SchemaExpectation.foreignReason`): refused (exit 7), not "corrupt".
    public var foreign: String?

    /// The first failed check, if any.
    public var failure: Manifest.Check? { checks.first { !$0.ok } }
    public var passed: Bool { failure == nil }

    public struct Options: Sendable {
        public var quick: Bool
        public var expectation: SchemaExpectation
        public var maxErrors: Int = 100
        public var busyTimeoutMs: Int = 5000
        /// integrity_check (or quick_check) and foreign_key_check; off only where the same
        /// bytes were already checked (a restore's post-check compares their SHA-256).
        public var structural = true
        public init(quick: Bool, expectation: SchemaExpectation) {
            self.quick = quick
            self.expectation = expectation
        }
    }

    /// Runs every check on the database at `path`. Throws only when the file cannot be
    /// examined at all (missing, not a database, unreadable, not a whole database image by
    /// `FileShape`'s rules: exit 4); check failures are recorded.
    public static func run(path: String, options: Options) throws -> DatabaseCheck {
        let (header, fileSize) = try DatabaseHeader.read(path)
        let walPresent = try FileStatus.of(path + "-wal") != nil
        // SQLite opens a file with bytes after its last page and ignores them (issue 9), or
        // stops at the first page past the end: the shape rules integrity applies come first.
        let shape = FileShape.problems(header, fileSize: fileSize, walPresent: walPresent)
        guard shape.isEmpty else { throw AbathurError(.notADatabase, path, "header: \(shape.joined(separator: "; "))") }
        // A plain read-only connection would create a -wal and -shm beside a WAL-mode file
        // that has none (see LiveReader); nothing writes this file, so immutable is exact.
        let quiet = header.isWAL && !walPresent
        let connection: Connection
        do {
            connection = try Connection(path: path, mode: quiet ? .immutable : .readOnly, busyTimeoutMs: options.busyTimeoutMs)
        } catch {
            throw error.asAbathurError
        }
        do {
            return try run(connection: connection, header: header, fileSize: fileSize, options: options)
        } catch let error as SQLiteError {
            throw error.asAbathurError
        }
    }

    static func run(connection db: Connection, header: DatabaseHeader, fileSize: Int64, options: Options) throws -> DatabaseCheck {
        let pageSize = Int(try db.integer("PRAGMA page_size"))
        let pageCount = try db.integer("PRAGMA page_count")
        var report = DatabaseCheck(
            header: header, fileSize: fileSize,
            schema: Manifest.Schema(sha256: "", tables: [], indexes: [], sql: []),
            pageSize: pageSize, pageCount: pageCount,
            freelistCount: try db.integer("PRAGMA freelist_count"),
            userVersion: try db.integer("PRAGMA user_version"),
            applicationId: try db.integer("PRAGMA application_id"))

        // An empty file and a fresh database both "pass" integrity_check (FACTS.md 4).
        let headerOK = pageCount > 1 && (!header.pageCountIsValid || Int64(header.pageCount) == pageCount)
        report.checks.append(Manifest.Check(
            name: "header", ok: headerOK,
            detail: headerOK ? "page size \(pageSize), \(pageCount) pages"
                : "\(pageCount) page(s): an empty database (header says \(header.pageCount))"))

        if options.structural {
            let pragma = options.quick ? "quick_check" : "integrity_check"
            let messages = try db.rows("PRAGMA \(pragma)(\(options.maxErrors))").compactMap { $0.first ?? nil }
            let integrityOK = messages == ["ok"]
            report.checks.append(Manifest.Check(
                name: pragma, ok: integrityOK,
                detail: integrityOK ? "ok" : messages.prefix(5).joined(separator: "; ") + (messages.count > 5 ? "; … (\(messages.count) messages)" : "")))

            let violations = try db.rows("PRAGMA foreign_key_check")
            let fkDetail = violations.prefix(5).map { row in
                "\(row[0] ?? "?") rowid \(row[1] ?? "NULL") -> \(row[2] ?? "?")"
            }.joined(separator: "; ")
            report.checks.append(Manifest.Check(
                name: "foreign_key_check", ok: violations.isEmpty,
                detail: violations.isEmpty ? "ok" : "\(violations.count) violation(s): \(fkDetail)"))
        }

        let objects = try db.rows("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
        var tables: [String] = []
        var indexes: [String] = []
        var virtualTables: Set<String> = []
        var sqlLines: [String] = []
        for row in objects {
            let type = row[0] ?? "", name = row[1] ?? "", sql = row[3] ?? ""
            sqlLines.append("\(type) \(name): \(sql)")
            if type == "table" && !name.hasPrefix("sqlite_") {
                tables.append(name)
                if sql.uppercased().hasPrefix("CREATE VIRTUAL TABLE") { virtualTables.insert(name) }
            }
            if type == "index" { indexes.append(name) }
        }
        report.schema = Manifest.Schema(sha256: SHA256.hex(of: Array(sqlLines.joined(separator: "\n").utf8)),
                                        tables: tables, indexes: indexes, sql: sqlLines)
        let expectation = options.expectation
        report.foreign = expectation.foreignReason(tables: tables, applicationId: report.applicationId)
        let missingTables = expectation.tables.filter { !tables.contains($0) }
        let missingIndexes = expectation.indexes.filter { !indexes.contains($0) }
        var schemaProblems: [String] = []
        if !missingTables.isEmpty { schemaProblems.append("missing table(s) \(missingTables.joined(separator: ", "))") }
        if indexes.count < expectation.minIndexes {
            schemaProblems.append("\(indexes.count) indexes, expected at least \(expectation.minIndexes)")
        }
        if !missingIndexes.isEmpty { schemaProblems.append("missing index(es) \(missingIndexes.joined(separator: ", "))") }
        report.checks.append(Manifest.Check(
            name: "schema", ok: schemaProblems.isEmpty,
            detail: schemaProblems.isEmpty ? "\(tables.count) tables, \(indexes.count) indexes" : schemaProblems.joined(separator: "; ")))

        for table in tables where !virtualTables.contains(table) {
            let quoted = "\"" + table.replacingAll("\"", with: "\"\"") + "\""
            report.rowCounts[table] = try db.integer("SELECT count(*) FROM \(quoted)")
        }
        report.checks.append(Manifest.Check(
            name: "row_counts", ok: true,
            detail: "\(report.rowCounts.values.reduce(0, +)) rows in \(report.rowCounts.count) tables"))
        return report
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}
