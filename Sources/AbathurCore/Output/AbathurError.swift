/// The one error type the tools report: what happened (its kind), with which file, and what
/// went wrong. Messages are lower-case with no trailing period, so that a diagnostic reads
/// `abathur-backup: error: /var/lib/abathur/abathur.db: not an SQLite database`.
///
/// The core says what happened; SPEC.md's exit code is decided once, from the kind, where a
/// command ends (`ExitCode(_ kind:)`). Callers branch on `kind`, never on an exit code.
public struct AbathurError: Error, Sendable, CustomStringConvertible {
    /// What happened. Each kind maps to one exit code (`ExitCode(_:)`).
    public enum Kind: String, Sendable, Equatable, CaseIterable, Encodable {
        /// A flag, argument or setting is wrong (or names something that is not there, such as
        /// a backup by name).
        case usage
        /// A file the operation reads does not exist (the database, a source).
        case notFound
        /// A path that is a symlink, a device, a directory where a file belongs, or the like.
        case unsafePath
        /// Something would be overwritten that must not be (a final name that already exists).
        case alreadyExists
        /// Larger than the tool accepts (a config file, a manifest).
        case tooLarge
        /// Permission denied, or a read-only filesystem.
        case permission
        /// Empty, not an SQLite database, or not a whole database image (header, shape).
        case notADatabase
        /// An SQLite database whose contents are damaged.
        case corrupt
        /// Committed transactions that SQLite's recovery would silently drop from a `-wal`.
        case walLoss
        /// A healthy database of another application.
        case foreign
        /// A backup (or a candidate made from one) that does not match its manifest or fails
        /// its checks.
        case damagedBackup
        /// A backup without a manifest, or one whose checks did not pass when it was taken.
        case incompleteBackup
        /// No backup to use (none at all, none verified, none before the given time).
        case noBackup
        /// A replaced database (or a fresh one) failed its checks or its health check.
        case checkFailed
        /// A process holds the database, so it may not be replaced.
        case inUse
        /// A precondition refused the operation (a user_version that differs from the
        /// expected one, a unit that systemctl could not stop or start, a command that cannot
        /// run).
        case refused
        /// Another instance holds the lock.
        case locked
        /// SQLite stayed busy past the timeout (a writer, a blocked checkpoint).
        case busy
        /// No space: detected before writing, or a full filesystem, a quota, `RLIMIT_FSIZE`.
        case noSpace
        /// A rename across filesystems (EXDEV).
        case crossDevice
        /// Any other I/O error.
        case io
        /// Standard output could not be written (a closed pipe, a full disk).
        case output
        /// A bug: something that should not happen did.
        case `internal`
    }

    /// What happened.
    public var kind: Kind
    /// The file the problem is about, when there is one.
    public var path: String?
    /// What went wrong.
    public var message: String

    public init(_ kind: Kind, _ path: String?, _ message: String) {
        self.kind = kind
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
        AbathurError(.internal, nil, message)
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
