/// The names backups carry (SPEC.md, "Defaults"), parsed and made.
///
/// - scheduled: `abathur_YYYY-MM-DD_HH-MM-SS.db.gz` (UTC)
/// - manual: `LABEL_YYYYMMDD_HHMMSS.db.gz` (UTC), `manual` unless `--label` says otherwise
///
/// When a name is already taken (two backups in one second) a `_N` suffix (N ≥ 2) is added
/// before `.db.gz`; it sorts after the plain name, so names still sort by time.
public struct BackupName: Sendable, Hashable, Comparable {
    public enum Kind: String, Sendable, Codable { case scheduled, manual }

    public static let suffix = ".db.gz"
    public static let manifestSuffix = ".json"
    public static let scheduledPrefix = "abathur"

    public var kind: Kind
    public var label: String
    /// Seconds since the epoch, UTC, as written in the name.
    public var time: Int64
    public var sequence: Int

    public init(kind: Kind, label: String, time: Int64, sequence: Int = 1) {
        self.kind = kind
        self.label = label
        self.time = time
        self.sequence = sequence
    }

    /// The `.db.gz` file name.
    public var fileName: String {
        let t = Clock.utc(time)
        let p = Clock.pad
        let stamp = kind == .scheduled
            ? "\(p(t.year, 4))-\(p(t.month, 2))-\(p(t.day, 2))_\(p(t.hour, 2))-\(p(t.minute, 2))-\(p(t.second, 2))"
            : "\(p(t.year, 4))\(p(t.month, 2))\(p(t.day, 2))_\(p(t.hour, 2))\(p(t.minute, 2))\(p(t.second, 2))"
        let seq = sequence > 1 ? "_\(sequence)" : ""
        return "\(label)_\(stamp)\(seq)\(BackupName.suffix)"
    }

    public var manifestName: String { fileName + BackupName.manifestSuffix }

    /// A label is lower-case letters, digits and dashes, starting with a letter or digit, at
    /// most 40 long, and not the scheduled prefix.
    public static func isValidLabel(_ label: String) -> Bool {
        let bytes = Array(label.utf8)
        guard (1...40).contains(bytes.count), label != scheduledPrefix else { return false }
        func ok(_ b: UInt8, first: Bool) -> Bool {
            (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || (!first && b == UInt8(ascii: "-"))
        }
        return bytes.enumerated().allSatisfy { ok($0.element, first: $0.offset == 0) }
    }

    /// Parses a `.db.gz` file name; nil for anything that is not one of ours.
    public init?(fileName: String) {
        guard fileName.hasSuffix(BackupName.suffix) else { return nil }
        let stem = String(fileName.dropLast(BackupName.suffix.count))
        var parts = stem.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        var sequence = 1
        if parts.count == 4, let n = Int(parts[3]), n >= 2, String(n) == parts[3] {
            sequence = n
            parts.removeLast()
        }
        guard parts.count == 3 else { return nil }
        let label = parts[0]
        func numbers(_ text: String, _ separator: Character?, _ widths: [Int]) -> [Int]? {
            let pieces: [String]
            if let separator {
                pieces = text.split(separator: separator, omittingEmptySubsequences: false).map(String.init)
            } else {
                var rest = Substring(text)
                var out: [String] = []
                for w in widths {
                    guard rest.count >= w else { return nil }
                    out.append(String(rest.prefix(w)))
                    rest = rest.dropFirst(w)
                }
                guard rest.isEmpty else { return nil }
                pieces = out
            }
            guard pieces.count == widths.count else { return nil }
            var result: [Int] = []
            for (piece, width) in zip(pieces, widths) {
                guard piece.count == width, piece.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(piece) else { return nil }
                result.append(n)
            }
            return result
        }
        let date: [Int]?
        let clock: [Int]?
        if label == BackupName.scheduledPrefix {
            kind = .scheduled
            date = numbers(parts[1], "-", [4, 2, 2])
            clock = numbers(parts[2], "-", [2, 2, 2])
        } else {
            guard BackupName.isValidLabel(label) else { return nil }
            kind = .manual
            date = numbers(parts[1], nil, [4, 2, 2])
            clock = numbers(parts[2], nil, [2, 2, 2])
        }
        guard let d = date, let c = clock, (1...12).contains(d[1]), (1...31).contains(d[2]),
              c[0] < 24, c[1] < 60, c[2] < 61 else { return nil }
        self.label = label
        self.sequence = sequence
        time = Clock.epoch(year: d[0], month: d[1], day: d[2], hour: c[0], minute: c[1], second: c[2])
        // Round-trip: only canonical spellings are ours.
        guard self.fileName == fileName else { return nil }
    }

    public static func < (a: BackupName, b: BackupName) -> Bool {
        (a.time, a.sequence, a.fileName) < (b.time, b.sequence, b.fileName)
    }
}
