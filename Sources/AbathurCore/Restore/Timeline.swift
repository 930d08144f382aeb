/// Every step of a restore with its timestamps and result (SPEC.md: "Every restore writes a
/// timeline"), logged as it happens and kept for the incident record and `--json`.
public final class Timeline: @unchecked Sendable {
    public struct Step: Sendable, Encodable {
        public var name: String
        public var started: String
        public var startedUnix: Double
        public var durationMs: Int64
        public var ok: Bool
        public var detail: String
    }

    public private(set) var steps: [Step] = []
    let console: Console
    public let started = Clock.now()

    public init(console: Console) {
        self.console = console
    }

    /// Runs one step; `body` returns its value and a one-line detail. A thrown error is
    /// recorded as the step's failure and rethrown.
    @discardableResult
    public func step<T>(_ name: String, _ body: () throws -> (T, String)) throws -> T {
        let startWall = Clock.now()
        let startMono = Clock.monotonicSeconds()
        do {
            let (value, detail) = try body()
            record(name, startWall, startMono, ok: true, detail: detail)
            return value
        } catch {
            record(name, startWall, startMono, ok: false, detail: "\(error)")
            throw error
        }
    }

    /// Records a step whose outcome is known without running anything (a check that failed,
    /// something skipped).
    public func note(_ name: String, ok: Bool, _ detail: String) {
        record(name, Clock.now(), Clock.monotonicSeconds(), ok: ok, detail: detail)
    }

    private func record(_ name: String, _ startWall: Double, _ startMono: Double, ok: Bool, detail: String) {
        let ms = Int64((Clock.monotonicSeconds() - startMono) * 1000)
        let step = Step(name: name, started: Clock.iso8601(Int64(startWall)), startedUnix: startWall, durationMs: ms, ok: ok, detail: detail)
        steps.append(step)
        let line = "\(Clock.iso8601(Int64(startWall))) \(name): \(ok ? "" : "FAILED: ")\(detail) (\(Timeline.seconds(ms)))"
        // Shown on a terminal or with --verbose; a failure also ends the run with its one
        // error line, so it is not repeated as a warning here.
        console.info(line)
    }

    static func seconds(_ ms: Int64) -> String {
        "\(ms / 1000).\(Clock.pad(Int(ms % 1000) / 10, 2))s"
    }

    public var totalMs: Int64 { Int64((Clock.now() - started) * 1000) }
}
