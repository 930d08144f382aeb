/// The admission judge: what a database must satisfy to count as a backup, a verified backup
/// or a restore candidate (SPEC.md, `abathur-backup`), judged from one `DatabaseInspection` of
/// a file that nothing else writes: the header read raw, then SQLite opened read-only without
/// create (FACTS.md 4), `integrity_check` or `quick_check`, `foreign_key_check`, the expected
/// schema, and row counts per table. Its checks and facts are what a manifest records.
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
        /// integrity_check on every core (`ParallelIntegrityCheck`); off where the cores are
        /// busy with something else at the same time (a backup compresses beside its checks).
        public var parallel = true
        public init(quick: Bool, expectation: SchemaExpectation) {
            self.quick = quick
            self.expectation = expectation
        }

        var inspection: DatabaseInspection.Options {
            DatabaseInspection.Options(quick: quick, maxErrors: maxErrors, structural: structural, parallel: parallel)
        }
    }

    /// Inspects the database at `path` and judges it. Throws only when the file cannot be
    /// examined at all (`judge`); check failures are recorded.
    public static func run(path: String, options: Options) throws -> DatabaseCheck {
        try judge(try DatabaseInspection.file(path, options: options.inspection, busyTimeoutMs: options.busyTimeoutMs), options: options)
    }

    /// Throws when the file cannot be examined at all: not a whole database image by
    /// `FileShape`'s rules (exit 4), SQLite cannot open it or read its pages, ids or schema, or
    /// a writer holds it (SQLite's kind: busy, corrupt, I/O); a failed check is recorded.
    public static func judge(_ inspection: DatabaseInspection, options: Options) throws -> DatabaseCheck {
        let path = inspection.path
        guard inspection.shapeProblems.isEmpty else {
            throw AbathurError(.notADatabase, path, "header: \(inspection.shapeProblems.joined(separator: "; "))")
        }
        guard let read = inspection.contents else { throw AbathurError.internal("\(path): inspected without its contents") }
        do {
            let contents = try read.get()
            if let held = contents.heldBy { throw held }
            let pageSize = try contents.pageSize.get(), pageCount = try contents.pageCount.get()
            let schema = try contents.schema.get()
            var report = DatabaseCheck(
                header: inspection.header, fileSize: inspection.fileSize, schema: schema.manifest,
                pageSize: Int(pageSize), pageCount: pageCount, freelistCount: try contents.freelistCount.get(),
                userVersion: try contents.userVersion.get(), applicationId: try contents.applicationId.get())
            report.judge(contents, schema: schema, options: options)
            return report
        } catch {
            throw error.reported
        }
    }

    private mutating func judge(_ contents: DatabaseInspection.Contents, schema: DatabaseInspection.Schema, options: Options) {
        // An empty file and a fresh database both "pass" integrity_check (FACTS.md 4).
        let headerOK = pageCount > 1 && (!header.pageCountIsValid || Int64(header.pageCount) == pageCount)
        checks.append(Manifest.Check(
            name: "header", ok: headerOK,
            detail: headerOK ? "page size \(pageSize), \(pageCount) pages"
                : "\(pageCount) page(s): an empty database (header says \(header.pageCount))"))

        if let structure = contents.structure {
            // What SQLite said before it stopped is the evidence, and then why it stopped.
            let messages = structure.messages + (structure.failure.map { ["stopped: \($0.description)"] } ?? [])
            checks.append(Manifest.Check(
                name: structure.pragma, ok: structure.ok,
                detail: structure.ok ? "ok" : messages.prefix(5).joined(separator: "; ") + (messages.count > 5 ? "; … (\(messages.count) messages)" : "")))
        }
        switch contents.foreignKeys {
        case nil:
            break
        case .failure(let error)?:
            checks.append(Manifest.Check(name: "foreign_key_check", ok: false, detail: "could not be read: \(error.description)"))
        case .success(let violations)?:
            let fkDetail = violations.prefix(5).map { "\($0.table ?? "?") rowid \($0.rowid ?? "NULL") -> \($0.parent ?? "?")" }.joined(separator: "; ")
            checks.append(Manifest.Check(
                name: "foreign_key_check", ok: violations.isEmpty,
                detail: violations.isEmpty ? "ok" : "\(violations.count) violation(s): \(fkDetail)"))
        }

        let tables = schema.tables, indexes = schema.indexes
        let expectation = options.expectation
        foreign = expectation.foreignReason(tables: tables, applicationId: applicationId)
        let missingTables = expectation.tables.filter { !tables.contains($0) }
        let missingIndexes = expectation.indexes.filter { !indexes.contains($0) }
        var schemaProblems: [String] = []
        if !missingTables.isEmpty { schemaProblems.append("missing table(s) \(missingTables.joined(separator: ", "))") }
        if indexes.count < expectation.minIndexes {
            schemaProblems.append("\(indexes.count) indexes, expected at least \(expectation.minIndexes)")
        }
        if !missingIndexes.isEmpty { schemaProblems.append("missing index(es) \(missingIndexes.joined(separator: ", "))") }
        checks.append(Manifest.Check(
            name: "schema", ok: schemaProblems.isEmpty,
            detail: schemaProblems.isEmpty ? "\(tables.count) tables, \(indexes.count) indexes" : schemaProblems.joined(separator: "; ")))

        switch contents.rowCounts {
        case .success(let counts):
            rowCounts = counts
            checks.append(Manifest.Check(name: "row_counts", ok: true, detail: "\(counts.values.reduce(0, +)) rows in \(counts.count) tables"))
        case .failure(let error):
            checks.append(Manifest.Check(name: "row_counts", ok: false, detail: "could not be read: \(error.description)"))
        }
    }

    /// How this database's schema differs from what `manifest` recorded of it, if it does.
    public func schemaDifference(from manifest: Manifest) -> String? {
        guard schema.sha256 != manifest.schema.sha256 else { return nil }
        return "schema differs from the manifest's (sha256 \(schema.sha256), manifest \(manifest.schema.sha256))"
    }

    /// How this database's row counts differ from what `manifest` recorded, if they do.
    public func rowCountDifference(from manifest: Manifest) -> String? {
        guard rowCounts != manifest.rowCounts else { return nil }
        let differing = Set(manifest.rowCounts.keys).union(rowCounts.keys).sorted().filter { rowCounts[$0] != manifest.rowCounts[$0] }
        let detail = differing.prefix(5).map { "\($0) \(rowCounts[$0].map(String.init) ?? "missing") vs \(manifest.rowCounts[$0].map(String.init) ?? "missing")" }
        return "row counts differ from the manifest: \(detail.joined(separator: ", "))"
    }
}

extension DatabaseInspection.Contents {
    /// The SQLITE_BUSY or SQLITE_LOCKED that stopped the reading, if one did: no fact after it
    /// was read, and none can be judged.
    var heldBy: SQLiteError? {
        let failures: [SQLiteError?] = [pageSize.failed, pageCount.failed, freelistCount.failed, userVersion.failed,
                                        applicationId.failed, structure?.failure, foreignKeys?.failed, schema.failed, rowCounts.failed]
        return failures.compactMap { $0 }.first { $0.code.primary == .busy || $0.code.primary == .locked }
    }
}

extension Result {
    /// The error, when this is a failure.
    var failed: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

extension Error {
    /// This error as the tools report it: an `AbathurError` as it is, an `SQLiteError` by its
    /// code, anything else an internal error.
    var reported: AbathurError {
        if let error = self as? AbathurError { return error }
        if let error = self as? SQLiteError { return error.asAbathurError }
        return AbathurError.internal("unexpected error: \(self)")
    }
}
