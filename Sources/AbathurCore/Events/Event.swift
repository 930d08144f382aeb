/// What a core operation tells whoever runs it, as it happens. The core never prints: the
/// command passes an `EventSink` and decides what to show (a progress bar on a terminal, a
/// line with `--verbose`, nothing under cron).
public enum Event: Sendable {
    /// `done` of `total` units (pages, bytes) of a long step; `total` is 0 when unknown.
    case progress(step: String, done: Int64, total: Int64)
    /// A step began.
    case stepStarted(String)
    /// A step ended: its start, duration, result and one-line detail.
    case stepFinished(Timeline.Step)
    /// What a person watching would like to know.
    case info(String)
    /// Something that needs attention; the run goes on.
    case warning(String)
}

/// Where a core operation sends its events.
public struct EventSink: Sendable {
    private let handler: @Sendable (Event) -> Void

    public init(_ handler: @escaping @Sendable (Event) -> Void) {
        self.handler = handler
    }

    /// Drops every event: for callers that only want the result.
    public static let ignore = EventSink { _ in }

    public func callAsFunction(_ event: Event) {
        handler(event)
    }

    public func progress(_ step: String, done: Int64, total: Int64) {
        handler(.progress(step: step, done: done, total: total))
    }

    public func info(_ text: String) {
        handler(.info(text))
    }

    public func warning(_ text: String) {
        handler(.warning(text))
    }
}
