/// SQLite's file formats store every integer big-endian: the database header
/// (fileformat2.html), the WAL header and each frame header (walformat.html). One reader of
/// those fields for all of them.
extension Array where Element == UInt8 {
    /// The big-endian 16-bit field at `offset`.
    func bigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    /// The big-endian 32-bit field at `offset`.
    func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
}
