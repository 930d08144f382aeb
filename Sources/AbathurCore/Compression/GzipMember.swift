/// The gzip members abathur-backup writes: the database cut into chunks of `rawSize` bytes,
/// each compressed on its own into one complete gzip member (RFC 1952), the members
/// concatenated. `gunzip`, `pigz` and zlib read the result as one stream; the members cost
/// about 0.2% in size and let both compression and inflation run on every core.
///
/// Each member's header carries one extra field (FEXTRA), as BGZF does for bioinformatics
/// files: subfield `AT` holding the member's total length, so a reader finds every member
/// from the headers alone and can hand them to threads. Readers that do not know the field
/// skip it, as RFC 1952 requires.
///
///     1f 8b 08 04  00 00 00 00  00 03   magic, deflate, FEXTRA, no mtime, XFL 0, OS Unix
///     08 00                             XLEN = 8
///     41 54 04 00  LL LL LL LL          subfield "AT", 4 bytes: member length (little endian)
///     ...deflate...
///     CC CC CC CC  SS SS SS SS          CRC-32 and length of the chunk
enum GzipMember {
    /// The chunk size the writer uses, and the most a member may inflate to.
    static let rawSize = 1 << 20
    static let headerSize = 20
    static let trailerSize = 8
    /// Fixed bytes 0-15 of every header (the length follows).
    static let headerPrefix: [UInt8] = [0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0x03, 0x08, 0x00, 0x41, 0x54, 0x04, 0x00]

    /// The most bytes a member of a `rawSize` chunk can take, for any deflate output of at most
    /// `deflateBound` bytes.
    static func maxLength(deflateBound: Int) -> Int { headerSize + deflateBound + trailerSize }

    /// Writes the header for a member whose deflate data is `deflated` bytes long.
    static func writeHeader(into buffer: UnsafeMutableRawBufferPointer, deflated: Int) {
        for (i, byte) in headerPrefix.enumerated() { buffer[i] = byte }
        putLittleEndian(UInt32(headerSize + deflated + trailerSize), into: buffer, at: 16)
    }

    static func writeTrailer(into buffer: UnsafeMutableRawBufferPointer, at offset: Int, crc: UInt32, size: Int) {
        putLittleEndian(crc, into: buffer, at: offset)
        putLittleEndian(UInt32(truncatingIfNeeded: size), into: buffer, at: offset + 4)
    }

    /// The member length a header records, or nil when `header` (its first `headerSize`
    /// bytes) is not one of ours. A length that cannot hold a member is nil too.
    static func length(ofHeader header: UnsafeRawBufferPointer) -> Int? {
        guard header.count >= headerSize, headerPrefix.indices.allSatisfy({ header[$0] == headerPrefix[$0] }) else { return nil }
        let length = Int(littleEndian(header, at: 16))
        return length >= headerSize + trailerSize ? length : nil
    }

    static func littleEndian(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    private static func putLittleEndian(_ value: UInt32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        for i in 0..<4 { buffer[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
