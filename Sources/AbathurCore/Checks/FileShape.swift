/// The rules a database file's shape must follow, from its raw header and its size: one list
/// for `abathur-integrity`'s header finding and for `DatabaseCheck`'s header check (backup,
/// verify, the restore candidate), so the tools cannot disagree about a file.
///
/// SQLite itself opens a file with bytes after the header's last page, and ignores them; a
/// file that is not a whole database image is still not one (issue 9, item 3).
public enum FileShape {
    /// What is wrong with the shape of a file with header `h` and `fileSize` bytes; empty when
    /// nothing is. With a `-wal` beside it (`walPresent`) the file may lag behind the header's
    /// page count until a checkpoint, and may hold only its first page; without one the file
    /// is a self-contained image (a backup, a candidate, a database at rest): exactly the
    /// header's page count times the page size, when the header's count is valid.
    public static func problems(_ h: DatabaseHeader, fileSize: Int64, walPresent: Bool) -> [String] {
        var problems: [String] = []
        let pageSize = Int64(h.pageSize)
        let whole = fileSize % pageSize == 0
        let misaligned = "file size \(fileSize) is not a multiple of the page size \(h.pageSize)"
        if h.pageCountIsValid {
            let expected = Int64(h.pageCount) * pageSize
            if !walPresent && fileSize < expected {
                problems.append("truncated: \(fileSize) bytes, the header says \(h.pageCount) pages (\(expected) bytes)"
                                + (whole ? "" : "; \(misaligned)"))
            } else if !walPresent && fileSize > expected {
                problems.append("\(fileSize - expected) bytes after the last page: the header says \(h.pageCount) pages (\(expected) bytes), the file has \(fileSize)"
                                + (whole ? "" : "; \(misaligned)"))
            } else if !whole {
                problems.append(misaligned)
            }
            if h.freelistCount > h.pageCount { problems.append("freelist of \(h.freelistCount) pages in a \(h.pageCount)-page database") }
            if h.firstFreelistTrunk > h.pageCount { problems.append("freelist trunk page \(h.firstFreelistTrunk) beyond the end") }
        } else if !whole {
            problems.append(misaligned)
        }
        if h.textEncoding == 0 && h.pageCount > 1 { problems.append("text encoding 0 in a database with tables") }
        if fileSize <= pageSize && !walPresent { problems.append("only \(fileSize) bytes: an empty database") }
        return problems
    }
}
