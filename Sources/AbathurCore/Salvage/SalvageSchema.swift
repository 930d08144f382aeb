/// What a salvage knows of the database's schema: each table's root page and the shape of
/// its rows, each index's root page, and the SQL to create them again. Read from the
/// database's own `sqlite_schema` (page 1) when it is readable, otherwise from the newest
/// backup's manifest, and from both where page 1 gave only part of it.
public struct SalvageSchema: Sendable {
    /// A column's type affinity (datatype3.html, "Determination Of Column Affinity").
    public enum Affinity: Sendable {
        case integer, text, blob, real, numeric

        public init(declaredType: String) {
            let t = declaredType.uppercased()
            if t.contains("INT") { self = .integer }
            else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") { self = .text }
            else if t.isEmpty || t.contains("BLOB") { self = .blob }
            else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") { self = .real }
            else { self = .numeric }
        }
    }

    public struct Column: Sendable {
        public var name: String
        public var affinity: Affinity
        public var notNull: Bool
        /// Has a default: a row written before `ALTER TABLE ADD COLUMN` may lack it.
        public var hasDefault: Bool
    }

    public struct Table: Sendable {
        public var name: String
        public var sql: String
        public var rootPage: UInt32
        /// The columns a record stores, in order (virtual generated columns are not stored).
        public var columns: [Column]
        /// The `INTEGER PRIMARY KEY` column: stored as NULL, its value is the rowid.
        public var rowidAlias: Int?
        public var withoutRowid: Bool
    }

    public struct Index: Sendable {
        public var name: String
        public var table: String
        /// Nil for the automatic index of a UNIQUE or PRIMARY KEY constraint.
        public var sql: String?
        public var rootPage: UInt32
    }

    public enum Origin: String, Sendable, Encodable {
        case database, manifest
        case databaseAndManifest = "database+manifest"
    }

    public var tables: [Table] = []
    public var indexes: [Index] = []
    /// Views and triggers, created after the rows are in.
    public var otherSQL: [String] = []
    public var origin: Origin = .database

    /// How a record fits a table's columns. `allowed`: every value could be stored in its
    /// column; `natural`: also of the storage class the column's affinity gives.
    public struct Fit: Sendable {
        public var allowed: Bool
        public var natural: Bool
    }

    /// Does a record with `values` fit a row of `table`?
    public static func fit(_ values: [SQLValue], _ table: Table) -> Fit {
        let columns = table.columns
        guard !values.isEmpty, values.count <= columns.count else { return Fit(allowed: false, natural: false) }
        // Rows written before ALTER TABLE ADD COLUMN hold fewer values; the rest need a
        // default or NULL.
        for column in columns[values.count...] where column.notNull && !column.hasDefault { return Fit(allowed: false, natural: false) }
        var natural = values.count == columns.count
        for (i, value) in values.enumerated() {
            let column = columns[i]
            if i == table.rowidAlias {
                guard value == .null else { return Fit(allowed: false, natural: false) }
                continue
            }
            switch (value, column.affinity) {
            case (.null, _):
                if column.notNull { return Fit(allowed: false, natural: false) }
            case (.integer, .text), (.real, .text):
                // TEXT affinity turns every number into text before it is stored.
                return Fit(allowed: false, natural: false)
            case (.text, .text), (.integer, .integer), (.integer, .numeric), (.real, .real), (.integer, .real),
                 (.real, .numeric), (_, .blob):
                break
            default:
                natural = false
            }
        }
        return Fit(allowed: true, natural: natural)
    }

    /// The schema from `sqlite_schema` rows (type, name, tbl_name, rootpage, sql), with each
    /// table's columns read by SQLite itself from its CREATE statement in a scratch in-memory
    /// database. Objects whose SQL SQLite refuses are left out.
    public static func from(rows: [[SQLValue]]) -> SalvageSchema {
        var schema = SalvageSchema()
        let scratch = try? Connection(path: ":memory:", mode: .memory)
        func text(_ v: SQLValue?) -> String? { if case .text(let b)? = v { return String(decoding: b, as: UTF8.self) }; return nil }
        func int(_ v: SQLValue?) -> Int64? { if case .integer(let i)? = v { return i }; return nil }
        var pendingIndexes: [(String, String, String?, UInt32)] = []
        for row in rows where row.count == 5 {
            guard let type = text(row[0]), let name = text(row[1]), let table = text(row[2]) else { continue }
            let root = UInt32(clamping: int(row[3]) ?? 0)
            let sql = text(row[4])
            switch type {
            case "table":
                guard let sql, !name.hasPrefix("sqlite_") || name == "sqlite_sequence" || name.hasPrefix("sqlite_stat"),
                      let described = describe(name: name, sql: sql, root: root, in: scratch) else { continue }
                schema.tables.append(described)
            case "index":
                pendingIndexes.append((name, table, sql, root))
            case "view", "trigger":
                if let sql { schema.otherSQL.append(sql) }
            default:
                continue
            }
        }
        for (name, table, sql, root) in pendingIndexes where schema.tables.contains(where: { $0.name == table }) {
            schema.indexes.append(Index(name: name, table: table, sql: sql, rootPage: root))
        }
        return schema
    }

    /// Reads a table's columns by creating it in `scratch`. SQLite's own tables are not
    /// created there (SQLite makes them); their shapes are known.
    static func describe(name: String, sql: String, root: UInt32, in scratch: Connection?) -> Table? {
        if name == "sqlite_sequence" {
            return Table(name: name, sql: sql, rootPage: root,
                         columns: [Column(name: "name", affinity: .blob, notNull: false, hasDefault: false),
                                   Column(name: "seq", affinity: .blob, notNull: false, hasDefault: false)],
                         rowidAlias: nil, withoutRowid: false)
        }
        guard let scratch, (try? scratch.execute(sql)) != nil else { return nil }
        defer { try? scratch.execute("DROP TABLE IF EXISTS \(SQL.quoted(name))") }
        guard let info = try? scratch.rows("SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, hidden FROM pragma_table_xinfo(\(SQL.literal(name)))") else { return nil }
        let withoutRowid = ((try? scratch.integer("SELECT wr FROM pragma_table_list(\(SQL.literal(name))) WHERE schema = 'main'")) ?? 0) != 0
        var columns: [Column] = []
        var alias: Int?
        let pkCount = info.filter { ($0[4] ?? "0") != "0" }.count
        for row in info where row[5] != "2" && row[5] != "1" {
            let type = row[1] ?? ""
            if !withoutRowid, pkCount == 1, row[4] == "1", type.uppercased() == "INTEGER" { alias = columns.count }
            columns.append(Column(name: row[0] ?? "", affinity: Affinity(declaredType: type), notNull: row[2] == "1", hasDefault: row[3] == "1"))
        }
        guard !columns.isEmpty else { return nil }
        return Table(name: name, sql: sql, rootPage: root, columns: columns, rowidAlias: alias, withoutRowid: withoutRowid)
    }
}

extension SalvageSchema {
    /// The schema a manifest recorded: its SQL created in a scratch in-memory database (which
    /// names each index's table), with the root pages the manifest gives. Nil when the
    /// manifest predates root pages.
    public static func from(manifest: Manifest.Schema) -> SalvageSchema? {
        guard let roots = manifest.rootPages, let scratch = try? Connection(path: ":memory:", mode: .memory) else { return nil }
        // "type name: sql", tables first so that indexes, views and triggers find them.
        let lines = manifest.sql.compactMap { line -> (String, String)? in
            guard let space = line.firstIndex(of: " "), let colon = line.firstRange(of: ": ") else { return nil }
            return (String(line[..<space]), String(line[colon.upperBound...]))
        }
        for (type, sql) in lines.sorted(by: { ($0.0 == "table" ? 0 : 1) < ($1.0 == "table" ? 0 : 1) }) where !sql.isEmpty {
            if type == "table", sql.hasPrefix("CREATE TABLE sqlite_") { continue }
            try? scratch.execute(sql)
        }
        guard let objects = try? scratch.rows("SELECT type, name, tbl_name, sql FROM sqlite_schema") else { return nil }
        var rows: [[SQLValue]] = []
        func text(_ s: String?) -> SQLValue { s.map { .text(Array($0.utf8)) } ?? .null }
        for object in objects {
            let root = object[1].flatMap { roots[$0] } ?? 0
            rows.append([text(object[0]), text(object[1]), text(object[2]), .integer(root), text(object[3])])
        }
        var schema = from(rows: rows)
        // A table whose recorded column count disagrees with its SQL is not trusted.
        if let counts = manifest.columnCounts {
            schema.tables.removeAll { table in counts[table.name].map { $0 != table.columns.count } ?? false }
        }
        schema.origin = .manifest
        return schema
    }

    /// This schema, with what `other` knows of tables and indexes it lacks.
    public func filling(from other: SalvageSchema) -> SalvageSchema {
        var merged = self
        var added = false
        for table in other.tables where !tables.contains(where: { $0.name == table.name }) {
            merged.tables.append(table)
            added = true
        }
        for index in other.indexes where !indexes.contains(where: { $0.name == index.name }) && merged.tables.contains(where: { $0.name == index.table }) {
            merged.indexes.append(index)
            added = true
        }
        if merged.otherSQL.isEmpty { merged.otherSQL = other.otherSQL }
        if added { merged.origin = .databaseAndManifest }
        return merged
    }
}
