import AbathurCore
import ArgumentParser

/// Thrown by a command once it has reported its outcome: the process exits with `status`
/// (an `ExitCode`, or a monitoring plugin's 0-3 with `--nagios`).
struct ToolExit: Error {
    var status: Int32
    init(code: ExitCode) { status = code.rawValue }
    init(status: Int32) { self.status = status }
}

/// What every command run has: its console, its settings, and the one place where an
/// outcome becomes diagnostics, a JSON document, metrics and an exit code.
final class ToolContext {
    let tool: String
    let command: String
    let console: Console
    let options: CommonOptions
    private(set) var settings: Settings!
    private(set) var warnings: [String] = []
    private(set) var errors: [AbathurError] = []

    init(tool: String, command: String, options: CommonOptions) {
        self.tool = tool
        self.command = command
        self.options = options
        console = Console(tool: tool)
        console.json = options.json
        console.quiet = options.quiet
        console.verbose = options.verbose
    }

    func warn(_ text: String) {
        warnings.append(text)
        console.warning(text)
    }

    /// Reports a failure that the command still has a result for (a restore that was rolled
    /// back): one diagnostic line now, and the error in the `--json` document.
    func report(_ error: AbathurError) {
        errors.append(error)
        console.error(error)
    }

    /// Where textfile metrics go: `--prometheus FILE`, else `prometheus_dir`/TOOL.prom.
    var prometheusPath: String? {
        if let file = options.prometheus { return file }
        let dir = settings?.string(.prometheusDir) ?? ""
        return dir.isEmpty ? nil : Paths.join(dir, tool.replacingOccurrences("-", "_") + ".prom")
    }

    /// Loads settings, handles `--print-config`, runs `body`, and reports. `body` returns the
    /// exit code and the result for `--json`; an `AbathurError` it throws is reported as one
    /// diagnostic line and its exit code. `metrics` may add textfile metrics for any outcome.
    /// `sweepAtStart` false leaves stale temp files for the command to report (diskcheck).
    func run<R: Encodable>(
        flags: SettingFlags = SettingFlags(),
        sweepAtStart: Bool = true,
        _ body: (ToolContext) throws -> (ExitCode, R?),
        metrics: ((inout PrometheusMetrics, ExitCode, R?) -> Void)? = nil
    ) throws -> Never {
        var code = ExitCode.success
        var result: R?
        do {
            settings = try Settings(flags: options.settingFlags.merging(flags).values, configPath: options.config)
            if options.printConfig {
                printConfig()
                throw ToolExit(code: .success)
            }
            if sweepAtStart {
                for line in TempSweep.atStart(settings, metricsFile: options.prometheus) { console.info(line) }
            }
            (code, result) = try body(self)
        } catch let exit as ToolExit {
            throw exit
        } catch let error as AbathurError {
            code = error.exitCode
            report(error)
        } catch {
            code = .internalError
            report(AbathurError.internal("unexpected error: \(error)"))
        }
        if options.json {
            console.writeOut(JSONDocument(tool: tool, command: command, exitCode: code, errors: errors, warnings: warnings, result: result).encoded())
        }
        // Results that never reached stdout are a failed run (exit 8), metrics included.
        if let failure = Console.takeOutputFailure() {
            console.error(failure)
            if code.rawValue <= ExitCode.warning.rawValue { code = failure.exitCode }
        }
        if let path = prometheusPath {
            var sink = PrometheusMetrics()
            let prefix = tool.replacingOccurrences("-", "_")
            sink.gauge("\(prefix)_last_run_timestamp_seconds", "When \(tool) \(command) last ran.", Clock.now().rounded(), labels: [("command", command)])
            sink.gauge("\(prefix)_last_exit_code", "Exit code of the last \(tool) \(command) run.", Double(code.rawValue), labels: [("command", command)])
            metrics?(&sink, code, result)
            do {
                try sink.write(to: path)
            } catch let error as AbathurError {
                console.error(error)
                if code == .success { code = error.exitCode }
            }
        }
        throw ToolExit(code: code)
    }

    private func printConfig() {
        struct Row: Encodable { var key: String; var value: String; var source: String; var environment: String }
        let rows = SettingKey.all.map { key in
            Row(key: key.name, value: settings[key].text, source: settings[key].source.description, environment: key.environment)
        }
        if options.json {
            struct Doc: Encodable { var configFile: String?; var settings: [Row] }
            console.writeOut(JSONDocument(tool: tool, command: "print-config", exitCode: .success, errors: [], warnings: [],
                                          result: Doc(configFile: settings.configFile, settings: rows)).encoded())
        } else {
            for row in rows { console.result("\(row.key)=\(row.value)\t# \(row.source)") }
        }
    }
}

extension String {
    func replacingOccurrences(_ target: Character, _ replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
