/// The service's systemd units, stopped and started with `systemctl` (found on `PATH`, run
/// with an argument vector, never a shell).
public struct Units: Sendable {
    public var names: [String]
    public var timeout: Double = 300

    public init(_ names: [String]) {
        self.names = names
    }

    public func stop() throws -> String { try systemctl("stop") }
    public func start() throws -> String { try systemctl("start") }

    func systemctl(_ verb: String) throws -> String {
        guard !names.isEmpty else { return "no units configured" }
        let outcome = try Subprocess.run(["systemctl", verb, "--"] + names, timeout: timeout)
        guard outcome.succeeded else {
            let why = outcome.timedOut ? "timed out" : "exit \(outcome.status)"
            throw AbathurError(.refused, nil, "systemctl \(verb) \(names.joined(separator: " ")) failed (\(why))\(outcome.lastLine.isEmpty ? "" : ": \(outcome.lastLine)")")
        }
        return "systemctl \(verb) \(names.joined(separator: " "))"
    }
}
