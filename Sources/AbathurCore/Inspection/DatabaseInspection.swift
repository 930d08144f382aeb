/// One fact about a database: its value, or why SQLite could not read it.
public typealias Fact<Value> = Result<Value, SQLiteError>

/// Everything the tools look at in one database, gathered once and judged twice: by the
/// admission judge (`DatabaseCheck`: what a backup, a verified backup or a restore candidate
/// must satisfy) and by the integrity judge (`IntegrityJudge`: the findings with severities
/// `abathur-integrity` reports). The inspection decides nothing; it records.
///
/// | fact | how it is read |
/// |---|---|
/// | header, file size, `-wal` beside it | raw bytes (`DatabaseHeader`), before SQLite opens the file |
/// | shape | `FileShape.problems`: a file that is not a whole database image is not opened |
/// | page size, count, freelist, user_version, application_id | one PRAGMA each |
/// | integrity_check / quick_check | row by row: SQLite can report problems, then fail the statement with SQLITE_CORRUPT; the rows before the failure are kept, and the failure |
/// | foreign_key_check | every violation |
/// | schema | `sqlite_schema` by type then name: tables, indexes, virtual tables, the `type name: sql` lines and their SHA-256 (the manifest's) |
/// | row counts | `count(*)` of every table but virtual ones |
///
/// Every fact is read even when an earlier one failed (a corrupt page fails one query, not
/// the next), except after SQLITE_BUSY or SQLITE_LOCKED: the database is held by a writer, and
/// each further query would wait its own busy timeout for the same answer.
public struct DatabaseInspection: Sendable {
    public var path: String
    public var header: DatabaseHeader
    public var fileSize: Int64
    public var walPresent: Bool
    /// What is wrong with the file's shape (`FileShape`); SQLite is not asked when anything is.
    public var shapeProblems: [String]
    /// What SQLite said; nil when the file was not opened (its shape is wrong), a failure when
    /// it could not be opened.
    public var contents: Fact<Contents>?

    /// The structural check SQLite ran (`integrity_check` or `quick_check`).
    public struct Structure: Sendable {
        public var pragma: String
        /// Every message, one per line, `*** in database main ***` headings left out.
        public var messages: [String]
        /// Why SQLite stopped before the end, if it did.
        public var failure: SQLiteError?
        public var ok: Bool { messages == ["ok"] && failure == nil }
    }

    /// One row of `foreign_key_check`.
    public struct ForeignKeyViolation: Sendable {
        public var table: String?
        public var rowid: String?
        public var parent: String?
        public var constraint: String?
    }

    public struct Schema: Sendable {
        /// Tables (user tables, by name), indexes, the sql lines and their hash.
        public var manifest: Manifest.Schema
        public var virtualTables: Set<String>
        public var tables: [String] { manifest.tables }
        public var indexes: [String] { manifest.indexes }
    }

    public struct Contents: Sendable {
        public var pageSize: Fact<Int64>
        public var pageCount: Fact<Int64>
        public var freelistCount: Fact<Int64>
        public var userVersion: Fact<Int64>
        public var applicationId: Fact<Int64>
        /// nil when not asked for (`Options.structural`).
        public var structure: Structure?
        public var foreignKeys: Fact<[ForeignKeyViolation]>?
        public var schema: Fact<Schema>
        public var rowCounts: Fact<[String: Int64]>
    }

    public struct Options: Sendable {
        public var quick: Bool
        /// integrity_check messages SQLite is asked for.
        public var maxErrors: Int
        /// integrity_check (or quick_check) and foreign_key_check.
        public var structural: Bool
        /// integrity_check split over every core, when the file may be opened again.
        public var parallel: Bool
        public init(quick: Bool, maxErrors: Int, structural: Bool = true, parallel: Bool = true) {
            self.quick = quick
            self.maxErrors = maxErrors
            self.structural = structural
            self.parallel = parallel
        }
    }

    /// The raw half: the header and the file's shape. Throws when `path` is no database at
    /// all (missing, not a regular file, empty, not SQLite: `DatabaseHeader.read`).
    public static func header(of path: String, followSymlinks: Bool = false) throws -> DatabaseInspection {
        let (header, fileSize) = try DatabaseHeader.read(path, followSymlinks: followSymlinks)
        let walPresent = try FileStatus.of(DatabaseFiles(path).wal) != nil
        return DatabaseInspection(path: path, header: header, fileSize: fileSize, walPresent: walPresent,
                                  shapeProblems: FileShape.problems(header, fileSize: fileSize, walPresent: walPresent), contents: nil)
    }

    /// The tables `ParallelIntegrityCheck` checks one by one, the ones with the most indexes
    /// (the most work) first, so that the last job to start is a small one.
    static let tablesByIndexCount = """
        SELECT t.name FROM sqlite_schema t WHERE t.type = 'table' AND coalesce(t.sql, '') NOT LIKE 'CREATE VIRTUAL%'
        ORDER BY (SELECT count(*) FROM sqlite_schema i WHERE i.type = 'index' AND i.tbl_name = t.name) DESC, t.name
        """

    /// How to open a file again from other threads (`Contents.read`): as `connection` was
    /// opened, with a memory map only when nothing else writes the file (a live database
    /// truncated under a map would be SIGBUS).
    public struct ParallelCheck: Sendable {
        public var path: String
        public var mode: Connection.Mode
        public var busyTimeoutMs: Int
        public var mmap: Bool

        public init(like connection: Connection, mmap: Bool) {
            (path, mode, busyTimeoutMs, self.mmap) = (connection.path, connection.mode, connection.busyTimeoutMs, mmap)
        }
    }

    /// The most of a file SQLite maps: all of it, up to Debian's SQLITE_MAX_MMAP_SIZE (2 GiB);
    /// pages past that are read as usual.
    static let mmapSize: Int64 = 0x7fff0000

    /// A database file nothing else writes (a backup's inflated copy, a candidate): the header,
    /// then, when its shape is whole, SQLite opened read-only without create (FACTS.md 4).
    public static func file(_ path: String, options: Options, busyTimeoutMs: Int) throws -> DatabaseInspection {
        var inspection = try header(of: path)
        guard inspection.shapeProblems.isEmpty else { return inspection }
        // A plain read-only connection would create a -wal and -shm beside a WAL-mode file
        // that has none (see LiveReader); nothing writes this file, so immutable is exact.
        let quiet = inspection.header.isWAL && !inspection.walPresent
        do {
            let connection = try Connection(path: path, mode: quiet ? .immutable : .readOnly, busyTimeoutMs: busyTimeoutMs)
            // Pages read through a memory map: integrity_check runs in half the time (1 GiB:
            // 2.1 s against 4-5 s), and the pages are page cache, not the process's memory.
            // Only for files nothing else writes: a file truncated under a map is SIGBUS.
            try connection.execute("PRAGMA mmap_size = \(DatabaseInspection.mmapSize)")
            let parallel = ParallelCheck(like: connection, mmap: true)
            inspection.contents = .success(Contents.read(connection, options: options, parallel: parallel))
        } catch {
            inspection.contents = .failure(error)
        }
        return inspection
    }
}

extension DatabaseInspection.Contents {
    /// Reads every fact through `db`, recording each failure in place of its value.
    /// `parallel`: the file may be opened again by other threads (nothing else writes it), and
    /// integrity_check runs on every core (`ParallelIntegrityCheck`).
    public static func read(_ db: Connection, options: DatabaseInspection.Options,
                            parallel: DatabaseInspection.ParallelCheck? = nil) -> DatabaseInspection.Contents {
        var held: SQLiteError?
        func fact<T>(_ body: () throws(SQLiteError) -> T) -> Fact<T> {
            if let held { return .failure(held) }
            do {
                return .success(try body())
            } catch {
                if error.code.primary == .busy || error.code.primary == .locked { held = error }
                return .failure(error)
            }
        }
        let pageSize = fact { () throws(SQLiteError) in try db.integer("PRAGMA page_size") }
        let pageCount = fact { () throws(SQLiteError) in try db.integer("PRAGMA page_count") }
        let freelistCount = fact { () throws(SQLiteError) in try db.integer("PRAGMA freelist_count") }
        let userVersion = fact { () throws(SQLiteError) in try db.integer("PRAGMA user_version") }
        let applicationId = fact { () throws(SQLiteError) in try db.integer("PRAGMA application_id") }

        var structure: DatabaseInspection.Structure?
        var foreignKeys: Fact<[DatabaseInspection.ForeignKeyViolation]>?
        if options.structural {
            let pragma = options.quick ? "quick_check" : "integrity_check"
            var checked = DatabaseInspection.Structure(pragma: pragma, messages: [], failure: held)
            var foreignKeyRows: Fact<[[String?]]>?
            // quick_check has no per-table form: it runs whole, beside foreign_key_check.
            if held == nil, options.parallel, let parallel, Threads.available > 1,
               let tables = options.quick ? [] : try? db.rows(DatabaseInspection.tablesByIndexCount).compactMap({ $0[0] }),
               let split = try? ParallelIntegrityCheck.run(parallel, pragma: pragma, maxErrors: options.maxErrors, tables: tables,
                                                           threads: min(4, Threads.available)) {
                checked = split.structure
                foreignKeyRows = split.foreignKeys
            } else if held == nil {
                do {
                    let statement = try db.prepare("PRAGMA \(pragma)(\(options.maxErrors))")
                    // One row can hold several lines, under a "*** in database main ***" heading.
                    while try statement.step() {
                        checked.messages += (statement.text(at: 0) ?? "").split(separator: "\n").map(String.init)
                            .filter { !$0.hasPrefix("*** in database ") }
                    }
                } catch {
                    checked.failure = error
                    if error.code.primary == .busy || error.code.primary == .locked { held = error }
                }
            }
            structure = checked
            foreignKeys = fact { () throws(SQLiteError) in
                let rows: [[String?]]
                switch foreignKeyRows {
                case .success(let split)?: rows = split
                case .failure(let error)?: throw error
                case nil: rows = try db.rows("PRAGMA foreign_key_check")
                }
                return rows.map { row in
                    DatabaseInspection.ForeignKeyViolation(table: row[0], rowid: row[1], parent: row[2], constraint: row.count > 3 ? row[3] : nil)
                }
            }
        }

        let schema = fact { () throws(SQLiteError) -> DatabaseInspection.Schema in
            let objects = try db.rows("SELECT type, name, tbl_name, coalesce(sql, ''), rootpage FROM sqlite_schema ORDER BY type, name")
            var tables: [String] = []
            var indexes: [String] = []
            var virtualTables: Set<String> = []
            var sqlLines: [String] = []
            var rootPages: [String: Int64] = [:]
            for row in objects {
                let type = row[0] ?? "", name = row[1] ?? "", sql = row[3] ?? ""
                sqlLines.append("\(type) \(name): \(sql)")
                if type == "table" && !name.hasPrefix("sqlite_") {
                    tables.append(name)
                    if sql.uppercased().hasPrefix("CREATE VIRTUAL TABLE") { virtualTables.insert(name) }
                }
                if type == "index" { indexes.append(name) }
                if let root = row[4].flatMap({ Int64($0) }), root > 0 { rootPages[name] = root }
            }
            var columnCounts: [String: Int] = [:]
            // The values a record stores: every column but virtual generated ones.
            for row in try db.rows("SELECT t.name, (SELECT count(*) FROM pragma_table_xinfo(t.name) WHERE hidden NOT IN (1, 2)) FROM sqlite_schema t WHERE t.type = 'table' AND t.sql NOT LIKE 'CREATE VIRTUAL%'") {
                if let name = row[0], let count = row[1].flatMap({ Int($0) }) { columnCounts[name] = count }
            }
            let manifest = Manifest.Schema(sha256: SHA256.hex(of: Array(sqlLines.joined(separator: "\n").utf8)),
                                           tables: tables, indexes: indexes, sql: sqlLines, rootPages: rootPages, columnCounts: columnCounts)
            return DatabaseInspection.Schema(manifest: manifest, virtualTables: virtualTables)
        }
        let rowCounts: Fact<[String: Int64]> = schema.flatMap { schema in
            fact { () throws(SQLiteError) -> [String: Int64] in
                var counts: [String: Int64] = [:]
                for table in schema.tables where !schema.virtualTables.contains(table) {
                    counts[table] = try db.integer("SELECT count(*) FROM \(SQL.quoted(table))")
                }
                return counts
            }
        }
        return DatabaseInspection.Contents(pageSize: pageSize, pageCount: pageCount, freelistCount: freelistCount,
                                           userVersion: userVersion, applicationId: applicationId, structure: structure,
                                           foreignKeys: foreignKeys, schema: schema, rowCounts: rowCounts)
    }
}

/// SQL text built from names the database itself holds.
enum SQL {
    /// `name` as an SQL identifier: in double quotes, inner quotes doubled.
    static func quoted(_ name: String) -> String {
        var out = "\""
        for character in name {
            if character == "\"" { out += "\"\"" } else { out.append(character) }
        }
        return out + "\""
    }

    /// `text` as an SQL string literal: in single quotes, inner quotes doubled.
    static func literal(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
    }
}
