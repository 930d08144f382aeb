/// The one JSON document a `--json` run prints: the same envelope for every tool and command,
/// with the command's own result inside. Fields are only ever added.
public struct JSONDocument<Result: Encodable>: Encodable {
    public struct Problem: Encodable {
        public var path: String?
        public var message: String
        /// What happened (`AbathurError.Kind`), for scripts that branch on it.
        public var kind: AbathurError.Kind
        public var exitCode: Int32
    }

    public var tool: String
    public var command: String
    public var exitCode: Int32
    public var ok: Bool
    public var errors: [Problem]
    public var warnings: [String]
    public var result: Result?

    public init(tool: String, command: String, exitCode: ExitCode, errors: [AbathurError], warnings: [String], result: Result?) {
        self.tool = tool
        self.command = command
        self.exitCode = exitCode.rawValue
        ok = exitCode == .success
        self.errors = errors.map { Problem(path: $0.path, message: $0.message, kind: $0.kind, exitCode: $0.exitCode.rawValue) }
        self.warnings = warnings
        self.result = result
    }

    public func encoded() -> String {
        guard let bytes = try? JSONFormat.encode(self) else {
            return "{\"ok\": false, \"error\": \"cannot encode the result\"}\n"
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
