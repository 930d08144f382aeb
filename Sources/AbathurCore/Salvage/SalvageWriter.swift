import CSQLite

/// The salvaged database: a fresh SQLite file built from the recovered schema, filled row by
/// row through SQLite (so every page of it is SQLite's own), then given its indexes, views,
/// triggers, `user_version` and `application_id`.
///
/// Rows keep their rowids. The first row found with a rowid wins (the tree walk runs first);
/// a later one is a duplicate. A row a constraint refuses goes to `lost_and_found` with the
/// rows no table could be given.
public final class SalvageWriter: SalvageSink {
    public static let lostAndFoundColumns = 64

    public let path: String
    let connection: Connection
    let schema: SalvageSchema
    let encoding: TextEncoding
    var inserts: [Int: Statement] = [:]
    var exists: [Int: Statement] = [:]
    var lostStatement: Statement?
    /// Tables whose CREATE statement SQLite refused: their rows go to lost_and_found.
    var uncreated: Set<Int> = []
    public private(set) var lostAndFoundName: String?
    public private(set) var notes: [String] = []

    /// Creates the database at `path`, a new empty file of ours, with the tables and unique
    /// indexes of `schema` (so that inserts are checked against them), in one transaction
    /// that `finish` commits.
    public init(path: String, schema: SalvageSchema, pageSize: Int, encoding: TextEncoding) throws {
        self.path = path
        self.schema = schema
        self.encoding = encoding
        connection = try Connection(path: path, mode: .readWrite)
        let name = ["UTF-8", "UTF-16le", "UTF-16be"][Int(encoding.rawValue) - 1]
        try connection.execute("PRAGMA page_size=\(pageSize); PRAGMA encoding='\(name)'; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA foreign_keys=OFF; PRAGMA threads=2")
        try connection.execute("BEGIN")
        for (t, table) in schema.tables.enumerated() where table.name != "sqlite_sequence" && !table.name.hasPrefix("sqlite_stat") {
            do { try connection.executeOne(table.sql) } catch {
                notes.append("table \(table.name): \(error.message)")
                uncreated.insert(t)
            }
        }
        for index in schema.indexes {
            guard let sql = index.sql, sql.uppercased().hasPrefix("CREATE UNIQUE") else { continue }
            do { try connection.executeOne(sql) } catch { notes.append("index \(index.name): \(error.message)") }
        }
    }

    func insertStatement(_ t: Int, count: Int) throws -> Statement {
        let key = t << 16 | count
        if let statement = inserts[key] { return statement }
        let table = schema.tables[t]
        var names = ["rowid"]
        for (i, column) in table.columns.prefix(count).enumerated() where i != table.rowidAlias { names.append(SQL.quoted(column.name)) }
        let sql = "INSERT OR IGNORE INTO \(SQL.quoted(table.name))(\(names.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: names.count).joined(separator: ", ")))"
        let statement = try connection.prepare(sql)
        inserts[key] = statement
        return statement
    }

    public func insert(table t: Int, rowid: Int64, values: [SQLValue]) throws -> InsertResult {
        let table = schema.tables[t]
        if uncreated.contains(t) { return .rejected("its table could not be created") }
        if table.name.hasPrefix("sqlite_stat") { return .duplicate }
        if table.name == "sqlite_sequence" {
            guard values.count == 2 else { return .rejected("not a sqlite_sequence row") }
            let statement = try connection.prepare("INSERT OR REPLACE INTO sqlite_sequence(rowid, name, seq) VALUES (?, ?, ?)")
            try statement.bind(.integer(rowid), at: 1)
            try statement.bind(values[0], at: 2, encoding: encoding)
            try statement.bind(values[1], at: 3, encoding: encoding)
            do { _ = try statement.step() } catch {
                guard SalvageWriter.refusesTheRow(error) else { throw error }
                return .rejected(error.message)
            }
            return .inserted
        }
        let statement = try insertStatement(t, count: values.count)
        defer { statement.reset() }
        try statement.bind(.integer(rowid), at: 1)
        var index: Int32 = 2
        for (i, value) in values.enumerated() where i != table.rowidAlias {
            try statement.bind(value, at: index, encoding: encoding)
            index += 1
        }
        do {
            _ = try statement.step()
        } catch {
            guard SalvageWriter.refusesTheRow(error) else { throw error }
            return .rejected(error.message)
        }
        if connection.changes > 0 { return .inserted }
        return try has(t, rowid) ? .duplicate : .rejected("a constraint (UNIQUE, NOT NULL or CHECK) refuses it")
    }

    /// A constraint or a type refuses this row: it goes to lost_and_found. Anything else (a
    /// full disk, an I/O error) ends the salvage.
    static func refusesTheRow(_ error: SQLiteError) -> Bool {
        [ResultCode(rawValue: SQLITE_CONSTRAINT), ResultCode(rawValue: SQLITE_MISMATCH), ResultCode(rawValue: SQLITE_TOOBIG)].contains(error.code.primary)
    }

    func has(_ t: Int, _ rowid: Int64) throws -> Bool {
        let statement: Statement
        if let cached = exists[t] { statement = cached } else {
            statement = try connection.prepare("SELECT 1 FROM \(SQL.quoted(schema.tables[t].name)) WHERE rowid = ?")
            exists[t] = statement
        }
        defer { statement.reset() }
        try statement.bind(.integer(rowid), at: 1)
        return try statement.step()
    }

    public func lost(page: UInt32, cell: Int, rowid: Int64?, values: [SQLValue], reason: String) throws {
        if lostStatement == nil {
            var name = "lost_and_found"
            var n = 0
            while schema.tables.contains(where: { $0.name.lowercased() == name }) {
                n += 1
                name = "lost_and_found_\(n)"
            }
            let columns = (0..<SalvageWriter.lostAndFoundColumns).map { "c\($0)" }
            try connection.execute("CREATE TABLE \(SQL.quoted(name))(page INTEGER, cell INTEGER, row_id INTEGER, reason TEXT, nfield INTEGER, \(columns.joined(separator: ", ")))")
            lostStatement = try connection.prepare("INSERT INTO \(SQL.quoted(name)) VALUES (\(Array(repeating: "?", count: 5 + columns.count).joined(separator: ", ")))")
            lostAndFoundName = name
        }
        let statement = lostStatement!
        defer { statement.reset() }
        try statement.bind(.integer(Int64(page)), at: 1)
        try statement.bind(.integer(Int64(cell)), at: 2)
        try statement.bind(rowid.map { .integer($0) } ?? .null, at: 3)
        try statement.bind(.text(Array(reason.utf8)), at: 4)
        try statement.bind(.integer(Int64(values.count)), at: 5)
        for (i, value) in values.prefix(SalvageWriter.lostAndFoundColumns).enumerated() {
            try statement.bind(value, at: Int32(6 + i), encoding: encoding)
        }
        _ = try statement.step()
    }

    /// Commits the rows, builds the other indexes, views and triggers, sets the ids and the
    /// journal mode the source had (WAL: format versions 2/2 in the header).
    public func finish(userVersion: UInt32, applicationId: UInt32, wal: Bool) throws {
        inserts = [:]
        exists = [:]
        lostStatement = nil
        for index in schema.indexes {
            guard let sql = index.sql, !sql.uppercased().hasPrefix("CREATE UNIQUE") else { continue }
            do { try connection.executeOne(sql) } catch { notes.append("index \(index.name): \(error.message)") }
        }
        for sql in schema.otherSQL {
            do { try connection.executeOne(sql) } catch { notes.append("\(sql.prefix(60))…: \(error.message)") }
        }
        try connection.execute("PRAGMA user_version=\(Int32(bitPattern: userVersion)); PRAGMA application_id=\(Int32(bitPattern: applicationId))")
        try connection.execute("COMMIT")
        if wal { try connection.execute("PRAGMA journal_mode=WAL") }
    }

    /// Rows per table of the salvaged database.
    public func rowCounts() throws -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for table in schema.tables where !table.name.hasPrefix("sqlite_") {
            counts[table.name] = try connection.integer("SELECT count(*) FROM \(SQL.quoted(table.name))")
        }
        return counts
    }
}
