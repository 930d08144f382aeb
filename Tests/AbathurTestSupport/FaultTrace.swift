import Foundation
import XCTest

/// The fault-injection loops visit exactly the call numbers a run makes: a clean run with
/// `ABATHUR_FAULT_TRACE` counts the calls of each operation, then every one is visited.
enum FaultTrace {
    /// Runs `body` once with tracing on and returns how many calls of each operation it made.
    static func count(in directory: String, _ body: (_ env: [String: String]) throws -> Void) throws -> [String: Int] {
        let path = directory + "/fault-trace-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(["ABATHUR_FAULT_TRACE": path])
        let lines = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return lines.split(separator: "\n").reduce(into: [:]) { $0[String($1), default: 0] += 1 }
    }

    /// Every `OP:WHAT@N` for the operations given, N from 1 to the calls the traced run made.
    static func faults(_ counts: [String: Int], ops: [String], what: String) -> [String] {
        ops.flatMap { op in (0..<(counts[op] ?? 0)).map { "\(op):\(what)@\($0 + 1)" } }
    }
}
