import AbathurCore
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// The multi-call entry point: the name the binary was started under picks the tool, so
/// `/usr/sbin/abathur-backup` is a link to one binary that carries every tool. Exit codes
/// follow SPEC.md; argument errors exit 2, not ArgumentParser's 64.
public enum ToolMain {
    /// Every tool, named by its command name: the one list of tools. The Makefile, the Debian
    /// package, the install test and the tests ask the binary for it (`abathur-tools
    /// --list-tools`), and the tests check that each tool has its man page and completion.
    static let commands: [any ParsableCommand.Type] = [
        BackupTool.self,
        IntegrityTool.self,
        RestoreTool.self,
        WalfixTool.self,
        DiskcheckTool.self,
    ]

    static let names: [String] = commands.map { $0.configuration.commandName! }
    static let tools = [String: any ParsableCommand.Type](uniqueKeysWithValues: zip(names, commands))

    public static func main(_ argv: [String]) -> Never {
        // Before anything opens a file: a closed 0, 1 or 2 gets /dev/null, so that the lock
        // file can never become "stdout" and receive a backup stream.
        guard StandardDescriptors.ensureOpen() else {
            writeErr("abathur-tools: error: /dev/null: cannot open it for a closed stdin, stdout or stderr\n")
            exit(ExitCode.ioError.rawValue)
        }
        // EFBIG from RLIMIT_FSIZE and EPIPE from a closed pipe become errors we report,
        // instead of signals that kill the process mid-write.
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        var arguments = Array(argv.dropFirst())
        var name = Paths.basename(argv.first ?? "")
        if tools[name] == nil, arguments == ["--list-tools"] {
            Console(tool: "abathur-tools").writeOut(names.map { $0 + "\n" }.joined())
            exit(checkedOutput(ExitCode.success.rawValue, tool: "abathur-tools"))
        }
        if tools[name] == nil, let first = arguments.first, tools[first] != nil {
            name = first
            arguments.removeFirst()
        }
        guard let tool = tools[name] else {
            let known = tools.keys.sorted().joined(separator: ", ")
            writeErr("abathur-tools: error: run as one of \(known) (a link named after the tool), or as 'abathur-tools TOOL ...' ('abathur-tools --list-tools' lists them)\n")
            exit(ExitCode.usage.rawValue)
        }
        TerminationCleanup.install(tool: name)
        exit(checkedOutput(run(tool, arguments: arguments), tool: name))
    }

    /// A run whose stdout could not be written (closed, full, a reader that went away) does
    /// not exit 0 or 1: its output is lost. Says so in one line and exits 8.
    static func checkedOutput(_ status: Int32, tool: String) -> Int32 {
        guard let failure = Console.takeOutputFailure() else { return status }
        writeErr("\(tool): error: \(Escape.controlCharacters(failure.description))\n")
        return status <= ExitCode.warning.rawValue ? ExitCode.ioError.rawValue : status
    }

    static func run(_ tool: any ParsableCommand.Type, arguments: [String]) -> Int32 {
        do {
            var command = try tool.parseAsRoot(arguments)
            try command.run()
            return ExitCode.success.rawValue
        } catch let exit as ToolExit {
            return exit.status
        } catch {
            let message = tool.fullMessage(for: error)
            if tool.exitCode(for: error) == .success {
                // --help, --version: written like every other output, so a failure is noticed.
                Console(tool: tool.configuration.commandName ?? "abathur-tools").writeOut(message + "\n")
                return ExitCode.success.rawValue
            }
            // One line, like every other diagnostic; ArgumentParser's own "Error: " goes.
            let name = tool.configuration.commandName ?? "abathur-tools"
            var first = message.split(separator: "\n").first.map(String.init) ?? message
            if first.hasPrefix("Error: ") { first.removeFirst("Error: ".count) }
            writeErr("\(name): error: \(Escape.controlCharacters(first)) (see '\(name) --help')\n")
            return ExitCode.usage.rawValue
        }
    }

    static func writeErr(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress!, $0.count) }
    }
}
