import Foundation
import XCTest

/// Hand-written man pages, rendered for real, for every tool of DocsDriftTests.
enum ManPage {
    /// `man --warnings -l PAGE` prints nothing on stderr and renders the tool's name, at the
    /// width man uses without a terminal (80) and at common terminal widths.
    static func assertFormatsWithoutWarnings(_ page: String, naming tool: String,
                                             file: StaticString = #filePath, line: UInt = #line) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/man") else {
            return XCTFail("man is not installed (apt-get install man-db groff-base, or run 'make deps')", file: file, line: line)
        }
        for width in ["80", "65", "132"] {
            var environment = ProcessInfo.processInfo.environment
            environment["MANWIDTH"] = width
            environment["MANPAGER"] = "cat"
            environment["PAGER"] = "cat"
            let run = try Sandbox.execute("/usr/bin/man", ["--warnings", "-l", page], environment: environment)
            XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
            XCTAssertEqual(run.stderr, "", "MANWIDTH=\(width) man --warnings -l \(page)", file: file, line: line)
            XCTAssertTrue(run.stdout.contains(tool), "the page renders", file: file, line: line)
        }
    }
}
