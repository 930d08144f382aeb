/// Every step of a run with its timestamps and result (SPEC.md: "Every restore writes a
/// timeline"), sent as events as it happens and kept for the incident record, the manifest's
/// durations and `--json`.
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
    public let events: EventSink
    public let started = Clock.now()

    public init(events: EventSink = .ignore) {
        self.events = events
    }

    /// Runs one step; `body` returns its value and a one-line detail. A thrown error is
    /// recorded as the step's failure and rethrown.
    @discardableResult
    public func step<T>(_ name: String, _ body: () throws -> (T, String)) throws -> T {
        let startWall = Clock.now()
        let startMono = Clock.monotonicSeconds()
        events(.stepStarted(name))
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

    /// When a step starts, for `record`: its wall-clock and monotonic time.
    public struct Start: Sendable {
        public var wall = Clock.now()
        public var monotonic = Clock.monotonicSeconds()
        public init() {}
    }

    /// Records a step that ran elsewhere (on another thread, beside the step in hand), from
    /// its `start` until `end` (monotonic seconds).
    public func record(_ name: String, since start: Start, until end: Double, ok: Bool, detail: String) {
        record(name, start.wall, start.monotonic, end: end, ok: ok, detail: detail)
    }

    private func record(_ name: String, _ startWall: Double, _ startMono: Double, end: Double = Clock.monotonicSeconds(), ok: Bool, detail: String) {
        let ms = Int64((end - startMono) * 1000)
        let step = Step(name: name, started: Clock.iso8601(Int64(startWall)), startedUnix: startWall, durationMs: ms, ok: ok, detail: detail)
        steps.append(step)
        events(.stepFinished(step))
    }

    /// How long a step took, as the timeline and the incident record print it: `1.25s`.
    public static func seconds(_ ms: Int64) -> String {
        "\(ms / 1000).\(Clock.pad(Int(ms % 1000) / 10, 2))s"
    }

    /// How long the step named `name` took, the last time it ran.
    public func durationMs(_ name: String) -> Int64? {
        steps.last { $0.name == name }?.durationMs
    }

    public var totalMs: Int64 { Int64((Clock.now() - started) * 1000) }
}
