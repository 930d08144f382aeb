/// SQLite's variable-length integer (fileformat2.html, "Varint"): 1 to 9 bytes, big-endian,
/// seven bits a byte with the high bit meaning "more", the ninth byte whole.
public enum Varint {
    /// The varint at `offset`, and its length; nil when it runs past `end`.
    public static func read(_ bytes: [UInt8], at offset: Int, end: Int? = nil) -> (value: Int64, length: Int)? {
        let limit = min(end ?? bytes.count, bytes.count)
        var value: UInt64 = 0
        var i = offset
        while i < limit {
            let byte = bytes[i]
            if i - offset == 8 {
                value = (value << 8) | UInt64(byte)
                return (Int64(bitPattern: value), 9)
            }
            value = (value << 7) | UInt64(byte & 0x7F)
            i += 1
            if byte & 0x80 == 0 { return (Int64(bitPattern: value), i - offset) }
        }
        return nil
    }
}

/// One value of a record, as stored: SQLite's five storage classes. Text keeps its bytes (the
/// database's encoding), so a value is written back without a round trip through String.
public enum SQLValue: Sendable, Equatable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text([UInt8])
    case blob([UInt8])

    /// The storage class's name, as `typeof()` says it.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .integer: return "integer"
        case .real: return "real"
        case .text: return "text"
        case .blob: return "blob"
        }
    }
}

/// A record (fileformat2.html, "Record Format"): a header of serial types, then the values.
public enum Record {
    /// The size of a value of serial type `type`; nil for the reserved types 10 and 11.
    public static func contentSize(ofSerialType type: Int64) -> Int? {
        switch type {
        case 0, 8, 9: return 0
        case 1: return 1
        case 2: return 2
        case 3: return 3
        case 4: return 4
        case 5: return 6
        case 6, 7: return 8
        case 10, 11: return nil
        default:
            guard type >= 12, type < Int64(Int32.max) else { return nil }
            return Int((type - 12) / 2)
        }
    }

    /// The serial types of the record in `payload`, and where its values start; nil when the
    /// header is malformed or its values would not fill the payload exactly (SQLite writes no
    /// slack). `payload` may be only the first part of a payload of `size` bytes (the part
    /// on the page, before the overflow pages): the header must be in it.
    public static func header(_ payload: [UInt8], size: Int? = nil) -> (types: [Int64], bodyStart: Int)? {
        let total = size ?? payload.count
        guard let (headerSize, n) = Varint.read(payload, at: 0), headerSize >= Int64(n), headerSize <= Int64(payload.count) else { return nil }
        let end = Int(headerSize)
        var types: [Int64] = []
        var offset = n
        var body = 0
        while offset < end {
            guard let (type, length) = Varint.read(payload, at: offset, end: end), let size = contentSize(ofSerialType: type) else { return nil }
            types.append(type)
            body += size
            offset += length
            guard body <= total else { return nil }
        }
        guard offset == end, end + body == total else { return nil }
        return (types, end)
    }

    /// The serial types of the record at the start of `bytes` and the record's length as its
    /// header gives it, whatever follows it; nil when the header is malformed or the record
    /// runs past `bytes`.
    public static func measure(_ bytes: [UInt8]) -> (types: [Int64], length: Int)? {
        guard let (headerSize, n) = Varint.read(bytes, at: 0), headerSize >= Int64(n), headerSize <= Int64(bytes.count) else { return nil }
        let end = Int(headerSize)
        var types: [Int64] = []
        var offset = n, body = 0
        while offset < end {
            guard let (type, length) = Varint.read(bytes, at: offset, end: end), let size = contentSize(ofSerialType: type) else { return nil }
            types.append(type)
            body += size
            offset += length
            guard end + body <= bytes.count else { return nil }
        }
        guard offset == end else { return nil }
        return (types, end + body)
    }

    /// The values of a record whose header is `headerLength` bytes with these serial types,
    /// read from `bytes` (which must hold them all).
    public static func decode(_ bytes: [UInt8], types: [Int64], headerLength: Int) -> [SQLValue]? {
        var values: [SQLValue] = []
        var offset = headerLength
        for type in types {
            guard let size = contentSize(ofSerialType: type), offset + size <= bytes.count else { return nil }
            values.append(value(type, bytes, offset, size))
            offset += size
        }
        return values
    }

    /// The values of the record in `payload`; nil when it is malformed.
    public static func decode(_ payload: [UInt8]) -> [SQLValue]? {
        guard let (types, start) = header(payload) else { return nil }
        var values: [SQLValue] = []
        values.reserveCapacity(types.count)
        var offset = start
        for type in types {
            let size = contentSize(ofSerialType: type)!
            values.append(value(type, payload, offset, size))
            offset += size
        }
        return values
    }

    static func value(_ type: Int64, _ bytes: [UInt8], _ offset: Int, _ size: Int) -> SQLValue {
        switch type {
        case 0: return .null
        case 8: return .integer(0)
        case 9: return .integer(1)
        case 1...6:
            var v: Int64 = bytes[offset] & 0x80 != 0 ? -1 : 0
            for i in 0..<size { v = (v << 8) | Int64(bytes[offset + i]) }
            return .integer(v)
        case 7:
            var bits: UInt64 = 0
            for i in 0..<8 { bits = (bits << 8) | UInt64(bytes[offset + i]) }
            return .real(Double(bitPattern: bits))
        default:
            let slice = Array(bytes[offset..<offset + size])
            return type & 1 == 0 ? .blob(slice) : .text(slice)
        }
    }
}
