import Foundation
import XCTest

/// Bash completion files, loaded and run for real, for every tool of DocsDriftTests.
enum Completion {
    /// `_abathur_backup` for `abathur-backup`.
    static func function(for tool: String) -> String { "_" + tool.replacingOccurrences(of: "-", with: "_") }

    /// The file passes `bash -n`, registers `complete -F _TOOL TOOL` with and without
    /// bash-completion, and sources silently under `set -u`.
    static func assertLoads(tool: String, file: String, sourceFile: StaticString = #filePath, line: UInt = #line) throws {
        let loaded = try Sandbox.execute("/bin/bash", ["-c", "source /usr/share/bash-completion/bash_completion 2>/dev/null; source \"$1\"; complete -p \(tool)", "bash", file])
        XCTAssertEqual(loaded.status, 0, loaded.stderr, file: sourceFile, line: line)
        XCTAssertEqual(loaded.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "complete -F \(function(for: tool)) \(tool)", file: sourceFile, line: line)

        let syntax = try Sandbox.execute("/bin/bash", ["-n", file])
        XCTAssertEqual(syntax.status, 0, syntax.stderr, file: sourceFile, line: line)
        // Without bash-completion, and under `set -u`, sourcing prints nothing and fails nothing.
        let strict = try Sandbox.execute("/bin/bash", ["-uc", "source \"$1\" && complete -p \(tool) >/dev/null", "bash", file])
        XCTAssertEqual(strict.status, 0, strict.stderr, file: sourceFile, line: line)
        XCTAssertEqual(strict.stderr, "", file: sourceFile, line: line)
        XCTAssertEqual(strict.stdout, "", file: sourceFile, line: line)
    }

    /// Runs the completion function for a command line whose last word is the one being
    /// completed, under `set -u`, and returns COMPREPLY.
    static func complete(tool: String, file completionFile: String, _ words: [String], env: [String: String] = [:],
                         file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let script = #"""
            source /usr/share/bash-completion/bash_completion >/dev/null 2>&1
            set -u
            source "$COMPLETION_FILE"
            COMP_WORDS=("$@")
            COMP_CWORD=$(($# - 1))
            COMP_LINE="$*"
            COMP_POINT=${#COMP_LINE}
            COMPREPLY=()
            "$COMPLETION_FUNCTION" "$COMPLETION_TOOL" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
            printf '%s\n' "${COMPREPLY[@]}"
            """#
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") }
        environment["COMPLETION_FILE"] = completionFile
        environment["COMPLETION_FUNCTION"] = function(for: tool)
        environment["COMPLETION_TOOL"] = tool
        for (key, value) in env { environment[key] = value }
        let run = try Sandbox.execute("/bin/bash", ["-c", script, "bash"] + words, environment: environment)
        XCTAssertEqual(run.status, 0, "completing \(words): \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stderr, "", "completing \(words)", file: file, line: line)
        return run.stdout.split(separator: "\n").map(String.init)
    }
}
