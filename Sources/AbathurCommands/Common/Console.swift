#if canImport(Glibc)
import Glibc
#endif
import AbathurCore

/// Where a tool's words go: results to stdout, one-line diagnostics to stderr
/// (`abathur-backup: error: FILE: PROBLEM`), progress on stderr when it is a terminal, and
/// nothing at all on stderr after a successful run when stdout is not a terminal (cron mails
/// whatever is printed) unless `--verbose`. The core's events (`Event`) are shown here, and
/// only here: `events` is the sink a command hands to a core operation.
public final class Console: @unchecked Sendable {
    public let tool: String
    public var json = false
    public var quiet = false
    public var verbose = false
    public let stdoutIsTerminal: Bool
    public let stderrIsTerminal: Bool
    /// stderr is connected to the journal: prefix lines with their syslog priority.
    let journal: Bool
    private var progressShown = false

    public init(tool: String) {
        self.tool = tool
        stdoutIsTerminal = isatty(1) == 1
        stderrIsTerminal = isatty(2) == 1
        journal = Console.stderrIsJournal()
    }

    /// systemd sets `JOURNAL_STREAM=DEV:INODE` for a service whose stderr goes to the journal.
    static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        var st = stat()
        guard parts.count == 2, fstat(2, &st) == 0 else { return false }
        return UInt64(parts[0]) == UInt64(st.st_dev) && UInt64(parts[1]) == UInt64(st.st_ino)
    }

    /// A result line on stdout (not in `--json` mode, where the document says it all).
    /// Control characters (a newline in a path) are escaped, tabs kept: one item is one line.
    public func result(_ line: String) {
        guard !json else { return }
        writeOut(Escape.controlCharacters(line, keepingTabs: true) + "\n")
    }

    /// The first failure to write stdout in this process (a closed or full stdout, a pipe
    /// whose reader went away). Once stdout failed, nothing more is written to it, and the
    /// run must not exit 0: `takeOutputFailure` hands it over to be reported, once.
    nonisolated(unsafe) private static var outputFailure: AbathurError?
    nonisolated(unsafe) private static var outputFailed = false

    public static func takeOutputFailure() -> AbathurError? {
        defer { outputFailure = nil }
        return outputFailure
    }

    /// Raw text on stdout, whatever the mode (used for the JSON document itself). A write
    /// error is remembered (`takeOutputFailure`), never ignored.
    public func writeOut(_ text: String) {
        guard !Console.outputFailed else { return }
        do {
            try FileDescriptor.standardOutput.write(Array(text.utf8))
        } catch {
            Console.outputFailed = true
            Console.outputFailure = AbathurError.stdout(error)
        }
    }

    public func error(_ error: AbathurError) {
        emit(priority: 3, "error: \(error.description)")
    }

    /// A failure that is a finding of a check, not an error that ends the run.
    public func error(_ path: String, _ message: String) {
        emit(priority: 3, "error: \(path): \(message)")
    }

    public func warning(_ text: String) {
        guard !quiet else { return }
        emit(priority: 4, "warning: \(text)")
    }

    /// What a person watching would like to know; shown with `--verbose`, or on a terminal.
    public func info(_ text: String) {
        guard !quiet, verbose || (stderrIsTerminal && !json) else { return }
        emit(priority: 6, text)
    }

    /// The sink a command passes to the core: each event shown as `show` says.
    public var events: EventSink {
        EventSink { [self] event in show(event) }
    }

    /// Progress as a bar (on a terminal), each finished step as a timeline line and info as a
    /// line (on a terminal or with `--verbose`), warnings always (unless `--quiet`).
    public func show(_ event: Event) {
        switch event {
        case .progress(let step, let done, let total):
            progress(step, done: done, total: total)
        case .stepStarted:
            break
        case .stepFinished(let step):
            // A failure also ends the run with its one error line, so it is not repeated as
            // a warning here.
            endProgress()
            info("\(step.started) \(step.name): \(step.ok ? "" : "FAILED: ")\(step.detail) (\(Timeline.seconds(step.durationMs)))")
        case .info(let text):
            info(text)
        case .warning(let text):
            warning(text)
        }
    }

    /// A progress bar on stderr, only when stderr is a terminal.
    public func progress(_ label: String, done: Int64, total: Int64) {
        guard stderrIsTerminal, !quiet, total > 0 else { return }
        let fraction = min(1.0, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        writeErr("\r\(tool): \(label) [\(bar)] \(Int(fraction * 100))%")
        progressShown = true
    }

    public func endProgress() {
        guard progressShown else { return }
        writeErr("\r\u{1b}[K")
        progressShown = false
    }

    /// One line: control characters in `text` (a newline in a path, an escape sequence from
    /// a config file) are escaped here, for every diagnostic.
    private func emit(priority: Int, _ text: String) {
        endProgress()
        writeErr((journal ? "<\(priority)>" : "") + "\(tool): \(Escape.controlCharacters(text))\n")
    }

    private func writeErr(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress!, $0.count) }
    }
}
