import Foundation
import XCTest

/// The service's units, stood in for: a `systemctl` in the sandbox's `bin/` (put first on PATH
/// by the test) that only logs each call as "ARGS SHA256", SHA256 being the database file's
/// hash at that moment (or "missing"). Restores and migrations are checked by it: units
/// stopped with the old database, started with the new one.
extension Sandbox {
    static func withStandInSystemctl(_ name: String) throws -> Sandbox {
        let box = try Sandbox(name)
        let bin = box.root + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let script = """
        #!/bin/sh
        if [ -f '\(box.db)' ]; then h=$(sha256sum < '\(box.db)' | cut -c1-64); else h=missing; fi
        echo "$* $h" >> '\(box.systemctlLog)'
        exit 0

        """
        try script.write(toFile: bin + "/systemctl", atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(bin + "/systemctl", 0o755), 0)
        return box
    }

    var systemctlLog: String { root + "/systemctl.log" }

    /// The stand-in's calls so far, one "ARGS SHA256" line each.
    var systemctlCalls: [String] {
        guard let text = try? String(contentsOfFile: systemctlLog, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }
}
