/// How bad a finding is.
public enum Severity: String, Codable, Sendable, Comparable, CaseIterable {
    case ok, warning, error, critical

    var rank: Int { Severity.allCases.firstIndex(of: self)! }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// One result of one check, with the evidence behind it.
public struct Finding: Codable, Sendable, Equatable {
    /// A stable name: `file`, `header`, `wal`, `integrity_check`, `quick_check`,
    /// `foreign_key_check`, `schema`, `indexes`, `user_version`, `application_id`,
    /// `row_counts`, `gzip`, `manifest`.
    public var check: String
    public var severity: Severity
    public var message: String
    public var evidence: [String]
    /// The exit code this finding stands for when it is not the severity's (SPEC.md, "which
    /// input gets which code"): a missing file 8, not a regular file or a foreign database 7.
    public var exitCode: ExitCode?

    public init(_ check: String, _ severity: Severity, _ message: String, evidence: [String] = [], exitCode: ExitCode? = nil) {
        self.check = check
        self.severity = severity
        self.message = message
        self.evidence = evidence
        self.exitCode = exitCode
    }
}

/// Everything found about one target (the live database, a file, or a backup).
public struct TargetReport: Codable, Sendable {
    public enum Kind: String, Codable, Sendable { case live, file, backup }

    public var path: String
    public var kind: Kind
    public var findings: [Finding] = []

    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    public var severity: Severity { findings.map(\.severity).max() ?? .ok }

    /// SPEC.md: 0 ok, 1 warnings only, 4 a corrupt database, 3 a bad backup; a finding that
    /// names its own code (missing 8, not a regular file or foreign 7) decides unless the
    /// content is also damaged.
    public var exitCode: ExitCode {
        var codes = findings.filter { $0.severity >= .error }.map { finding -> ExitCode in
            finding.exitCode ?? (kind == .backup ? .verificationFailed : .corrupt)
        }
        if codes.isEmpty { codes = findings.contains { $0.severity == .warning } ? [.warning] : [.success] }
        return ExitCode.mostSevere(codes)
    }

    mutating func add(_ check: String, _ severity: Severity, _ message: String, evidence: [String] = [], exitCode: ExitCode? = nil) {
        findings.append(Finding(check, severity, message, evidence: evidence, exitCode: exitCode))
    }
}
