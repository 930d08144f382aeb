/// When a filesystem needs attention (issue 12): a percentage used, as df's Use% counts it
/// (used over used plus available), and an amount free for an unprivileged writer (the
/// service's view, `f_bavail`). The percentages apply to inodes too; the free amounts are
/// bytes. At or above `warn`, or below `warnFree`, is a warning (exit 1); at or above
/// `crit`, or below `critFree`, critical (exit 6).
public struct DiskThresholds: Sendable, Encodable, Equatable {
    public var warnPercent: Double
    public var critPercent: Double
    /// Nil: not checked.
    public var warnFreeBytes: Int64?
    public var critFreeBytes: Int64?

    public init(warnPercent: Double, critPercent: Double, warnFreeBytes: Int64?, critFreeBytes: Int64?) {
        self.warnPercent = warnPercent
        self.critPercent = critPercent
        self.warnFreeBytes = warnFreeBytes
        self.critFreeBytes = critFreeBytes
    }

    public init(settings: Settings) throws {
        self.init(warnPercent: try settings.value(.diskWarn), critPercent: try settings.value(.diskCrit),
                  warnFreeBytes: try settings.value(.diskWarnFree), critFreeBytes: try settings.value(.diskCritFree))
    }

    public enum Level: Int, Sendable, Encodable, Comparable, CaseIterable {
        case ok, warning, critical

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        public var name: String { ["ok", "warning", "critical"][rawValue] }

        /// As its name: `"ok"`, `"warning"`, `"critical"`.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(name)
        }

        /// SPEC.md's codes for a monitor: 0, 1, and 6 (not enough space).
        public var exitCode: ExitCode { [ExitCode.success, .warning, .noSpace][rawValue] }
    }

    /// One threshold a filesystem is beyond.
    public struct Finding: Sendable, Encodable, Equatable {
        public var level: Level
        /// `bytes` or `inodes`.
        public var resource: String
        public var message: String
    }

    /// What `filesystem` is beyond, worst first; empty when it is fine.
    public func evaluate(_ filesystem: Filesystem) -> [Finding] {
        var findings: [Finding] = []
        let usedPercent = filesystem.usedPercent
        let free = filesystem.freeBytes
        func percentFinding(_ level: Level, _ limit: Double) -> Finding {
            Finding(level: level, resource: "bytes",
                    message: "\(Percent.describe(usedPercent)) used (\(level.name) at \(Percent.describe(limit))), \(Bytes.describe(free)) free")
        }
        func freeFinding(_ level: Level, _ limit: Int64) -> Finding {
            Finding(level: level, resource: "bytes", message: "\(Bytes.describe(free)) free (\(level.name) below \(Bytes.describe(limit)))")
        }
        if usedPercent >= critPercent { findings.append(percentFinding(.critical, critPercent)) }
        else if usedPercent >= warnPercent { findings.append(percentFinding(.warning, warnPercent)) }
        if let critFreeBytes, free < critFreeBytes { findings.append(freeFinding(.critical, critFreeBytes)) }
        else if let warnFreeBytes, free < warnFreeBytes { findings.append(freeFinding(.warning, warnFreeBytes)) }
        if let inodes = filesystem.inodesUsedPercent {
            let level: Level = inodes >= critPercent ? .critical : inodes >= warnPercent ? .warning : .ok
            if level != .ok {
                findings.append(Finding(level: level, resource: "inodes",
                                        message: "\(Percent.describe(inodes)) of inodes used (\(level.name) at \(Percent.describe(level == .critical ? critPercent : warnPercent))), \(filesystem.freeInodes) free"))
            }
        }
        return findings.sorted { $0.level > $1.level }
    }

    public func level(_ filesystem: Filesystem) -> Level {
        evaluate(filesystem).map(\.level).max() ?? .ok
    }

    /// What `--fix` frees space until, by default: below the warning level.
    public var warningTarget: DiskTarget { DiskTarget(usedPercent: warnPercent, freeBytes: warnFreeBytes) }
}

/// Where `abathur-diskcheck --fix` stops: every filesystem of the report below `usedPercent`
/// (bytes and inodes) and with at least `freeBytes` free.
public struct DiskTarget: Sendable, Encodable, Equatable {
    public var usedPercent: Double?
    public var freeBytes: Int64?

    public init(usedPercent: Double?, freeBytes: Int64?) {
        self.usedPercent = usedPercent
        self.freeBytes = freeBytes
    }

    /// `75%` (used) or a size free (`5GiB`); nil when it is neither.
    public static func parse(_ text: String) -> DiskTarget? {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasSuffix("%") {
            return Percent.parse(trimmed).map { DiskTarget(usedPercent: $0, freeBytes: nil) }
        }
        return Bytes.parse(trimmed).map { DiskTarget(usedPercent: nil, freeBytes: $0) }
    }

    public func isMet(by filesystem: Filesystem) -> Bool {
        shortfall(of: filesystem) == 0 && (usedPercent.map { limit in filesystem.inodesUsedPercent.map { $0 < limit } ?? true } ?? true)
    }

    /// Bytes still to free on `filesystem` to meet the target (0 when met).
    public func shortfall(of filesystem: Filesystem) -> Int64 {
        var needed: Int64 = 0
        if let freeBytes { needed = max(needed, freeBytes - filesystem.freeBytes) }
        if let usedPercent {
            // used' / size < p  ⇔  used' < p·size: free what is above it, and a byte more.
            let size = filesystem.usedBytes + filesystem.freeBytes
            let allowed = Int64((Double(size) * usedPercent / 100).rounded(.up)) - 1
            needed = max(needed, filesystem.usedBytes - allowed)
        }
        return max(0, needed)
    }

    public var description: String {
        [usedPercent.map { "below \(Percent.describe($0)) used" }, freeBytes.map { "at least \(Bytes.describe($0)) free" }]
            .compactMap { $0 }.joined(separator: " and ")
    }
}

extension Filesystem {
    /// df's Use%: used over used plus available to unprivileged writers.
    public var usedPercent: Double {
        let size = usedBytes + freeBytes
        return size > 0 ? Double(usedBytes) * 100 / Double(size) : 0
    }

    /// The same for inodes; nil when the filesystem does not count them (btrfs reports 0).
    public var inodesUsedPercent: Double? {
        guard totalInodes > 0 else { return nil }
        let used = totalInodes - freeInodesForRoot
        let size = used + freeInodes
        return size > 0 ? Double(used) * 100 / Double(size) : 0
    }
}

/// Percentages as flags and settings write them: `80%` or `80`.
public enum Percent {
    public static func parse(_ text: String) -> Double? {
        let trimmed = text.trimmingWhitespace()
        let number = trimmed.hasSuffix("%") ? String(trimmed.dropLast()).trimmingWhitespace() : trimmed
        guard let value = Double(number), value >= 0, value <= 100 else { return nil }
        return value
    }

    /// `81.3%`, `80%`.
    public static func describe(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)%" : "\(tenths / 10).\(tenths % 10)%"
    }
}
