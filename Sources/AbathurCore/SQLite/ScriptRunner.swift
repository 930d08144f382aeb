import CSQLite

/// One statement of an SQL script as SQLite's own parser splits it: where it starts (1-based
/// line of its first keyword), its text, and the rows it changed.
public struct ScriptStatement: Sendable, Equatable, Encodable {
    public var line: Int
    public var sql: String
    public var changes: Int64

    /// Its first line without the closing semicolon, for a diagnostic.
    public var display: String {
        var line = sql.split(separator: "\n").first.map(String.init) ?? sql
        while line.hasSuffix(";") { line.removeLast() }
        return line.count > 120 ? String(line.prefix(117)) + "..." : line
    }
}

/// A script statement that failed, and why.
public struct ScriptFailure: Error, Sendable {
    public var statement: ScriptStatement
    /// 1-based position of the statement in the script.
    public var index: Int
    public var error: SQLiteError
}

extension Connection {
    /// Prepares and runs `script` one statement at a time, as `sqlite3_exec` would, but
    /// telling the caller each statement before it runs (`check` may refuse it) and after
    /// (with `sqlite3_changes`), and naming the failing one with its line. Nothing here starts
    /// or ends a transaction: that is the caller's.
    public func runScript(_ script: String, check: (ScriptStatement) throws -> Void,
                          each: (ScriptStatement) -> Void) throws {
        let bytes = Array(script.utf8)
        var offset = 0
        var index = 0
        while offset < bytes.count {
            var statement: OpaquePointer?
            var consumed = 0
            let rc: Int32 = bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bytes.count) { base in
                    var tail: UnsafePointer<CChar>?
                    let rc = sqlite3_prepare_v2(handle, base + offset, Int32(bytes.count - offset), &statement, &tail)
                    consumed = tail.map { $0 - (base + offset) } ?? (bytes.count - offset)
                    return rc
                }
            }
            // The statement starts at its first non-blank, non-comment byte: its line is where
            // its first keyword is.
            let end = offset + consumed
            let start = offset + ScriptText.leadingTrivia(bytes[offset..<end])
            let line = 1 + bytes[..<start].filter { $0 == UInt8(ascii: "\n") }.count
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            var current = ScriptStatement(line: line, sql: text.trimmingWhitespace(), changes: 0)
            offset += max(consumed, 1)
            guard rc == SQLITE_OK else {
                index += 1
                throw ScriptFailure(statement: current, index: index, error: error(rc, sql: current.sql))
            }
            guard let statement else { continue }  // only comments or whitespace
            defer { sqlite3_finalize(statement) }
            index += 1
            try check(current)
            // Rows this statement changed, triggers included: sqlite3_changes keeps the last
            // DML's count across DDL, the total does not.
            let before = sqlite3_total_changes64(handle)
            var step = sqlite3_step(statement)
            while step == SQLITE_ROW { step = sqlite3_step(statement) }
            guard step == SQLITE_DONE else {
                throw ScriptFailure(statement: current, index: index, error: error(step, sql: current.sql))
            }
            current.changes = Int64(sqlite3_total_changes64(handle) - before)
            each(current)
        }
    }
}

/// Text helpers for SQL scripts.
enum ScriptText {
    /// How many bytes of blanks and comments (`-- …` to the end of the line, `/* … */`) start `slice`.
    static func leadingTrivia(_ slice: ArraySlice<UInt8>) -> Int {
        var i = slice.startIndex
        while i < slice.endIndex {
            let c = slice[i]
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C {
                i += 1
            } else if c == UInt8(ascii: "-"), i + 1 < slice.endIndex, slice[i + 1] == UInt8(ascii: "-") {
                while i < slice.endIndex, slice[i] != 0x0A { i += 1 }
            } else if c == UInt8(ascii: "/"), i + 1 < slice.endIndex, slice[i + 1] == UInt8(ascii: "*") {
                i += 2
                while i + 1 < slice.endIndex, !(slice[i] == UInt8(ascii: "*") && slice[i + 1] == UInt8(ascii: "/")) { i += 1 }
                i = min(i + 2, slice.endIndex)
            } else {
                break
            }
        }
        return i - slice.startIndex
    }
}
