/// The one error type the tools report: what went wrong, with which file, and which exit code
/// it maps to. Messages are lower-case with no trailing period, so that a diagnostic reads
/// `abathur-backup: error: /var/lib/abathur/abathur.db: not an SQLite database`.
public struct AbathurError: Error, Sendable, CustomStringConvertible {
    /// The exit code this failure maps to.
    public var code: ExitCode
    /// The file the problem is about, when there is one.
    public var path: String?
    /// What went wrong.
    public var message: String

    public init(_ code: ExitCode, _ path: String?, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }

    public static func usage(_ message: String, path: String? = nil) -> AbathurError {
        AbathurError(.usage, path, message)
    }

    public static func `internal`(_ message: String) -> AbathurError {
        AbathurError(.internalError, nil, message)
    }
}

/// Untrusted text (config-file content, paths, arguments) made safe to show on a terminal and
/// kept to one line: control characters become escapes, so a diagnostic can neither break
/// the one-line rule nor send escape sequences to the operator's terminal.
public enum Escape {
    /// `\n`, `\r`, `\t` and `\xNN` for the other C0 controls and DEL; `\u{NNNN}` for C1
    /// controls, line and paragraph separators and bidirectional overrides. Everything else,
    /// backslashes included, is left as it is.
    /// With `keepingTabs`, a tab stays a tab (a separator in result lines such as
    /// `--print-config`'s `key=value<TAB># source`).
    public static func controlCharacters(_ text: String, keepingTabs: Bool = false) -> String {
        let escaped = { (scalar: Unicode.Scalar) in needsEscape(scalar) && !(keepingTabs && scalar == "\t") }
        guard text.unicodeScalars.contains(where: escaped) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if escaped(scalar) { append(scalar, to: &out) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// Bytes that should be UTF-8, shown as text: valid characters as `controlCharacters`
    /// shows them, each byte of an invalid sequence as `\xNN`.
    public static func bytes(_ bytes: some Collection<UInt8>) -> String {
        var out = ""
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        let array = Array(bytes)
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                append(Unicode.UTF8.decode(encoded), to: &out)
                offset += encoded.count
            case .error(let length):
                for byte in array[offset..<offset + length] { out += hex(byte) }
                offset += length
            case .emptyInput:
                return out
            }
        }
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    static func append(_ scalar: Unicode.Scalar, to out: inout String) {
        guard needsEscape(scalar) else { out.unicodeScalars.append(scalar); return }
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value <= 0x7F {
                out += hex(UInt8(scalar.value))
            } else {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
    }

    static func hex(_ byte: UInt8) -> String {
        "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
    }
}
