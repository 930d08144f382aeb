import AbathurCore
import ArgumentParser

/// `abathur-integrity`: how healthy the live database and every backup are.
struct IntegrityTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abathur-integrity",
        abstract: "Check the live database (read-only, without disturbing a hot WAL) or backups, finding by finding.",
        version: AbathurVersion.current)

    @OptionGroup var common: CommonOptions

    @Argument(help: ArgumentHelp("A database (.db) or backup (.db.gz) file to check instead of the live database.", valueName: "path"))
    var path: String?

    @Option(help: ArgumentHelp("Check one backup from the backup directory (.db.gz optional).", valueName: "name"))
    var backup: String?

    @Flag(name: .customLong("all-backups"), help: "Check every backup in the backup directory.")
    var allBackups = false

    @Option(help: ArgumentHelp("Check this percentage of the backups (15 or 15%), those checked longest ago first.", valueName: "percent"))
    var sample: String?

    /// `--sample 15` or `--sample 15%`.
    var samplePercent: Double? {
        guard let sample else { return nil }
        return Double(sample.hasSuffix("%") ? String(sample.dropLast()) : sample)
    }

    @Flag(name: .setting(.quickCheck), help: "Use quick_check instead of integrity_check.")
    var quick = false

    @Option(name: .setting(.maxErrors), help: ArgumentHelp("Keep at most this many integrity_check messages (default \(Setting.maxErrors.key.defaultValue)).", valueName: "n"))
    var maxErrors: String?

    @Flag(help: "Print one monitoring-plugin status line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    var nagios = false

    @Option(help: ArgumentHelp("Salvage PATH (default: the live database) into a new database OUT by reading the file format itself.", valueName: "out"))
    var recover: String?

    @Flag(name: .customLong("include-freelist"), help: "With --recover: also read the pages on the freelist (deleted rows may come back).")
    var includeFreelist = false

    @Flag(help: "With --recover: install the salvaged database in place of the live one, through the safe path (units stopped, safety copy of the corrupt original, post-check, rollback).")
    var apply = false

    func validate() throws {
        let targets = [path != nil, backup != nil, allBackups || sample != nil].filter { $0 }.count
        if targets > 1 { throw ValidationError("give one of PATH, --backup NAME, --all-backups or --sample PERCENT") }
        if sample != nil, !(samplePercent.map { $0 > 0 && $0 <= 100 } ?? false) {
            throw ValidationError("--sample takes a percentage above 0 and at most 100, such as 15 or 15%")
        }
        if nagios && common.json { throw ValidationError("--nagios and --json both want stdout; choose one") }
        if recover == nil, includeFreelist || apply { throw ValidationError("--include-freelist and --apply go with --recover OUT") }
        if recover != nil {
            if backup != nil || allBackups || sample != nil || nagios || quick {
                throw ValidationError("--recover salvages one database: it does not go with --backup, --all-backups, --sample, --nagios or --quick")
            }
            if apply && path != nil { throw ValidationError("--apply replaces the live database (--db): give no PATH") }
            if path == "-" || path?.hasSuffix(".gz") == true { throw ValidationError("--recover reads a database file, not a backup or stdin: restore a backup with abathur-restore") }
        }
    }

    struct Output: Encodable {
        var targets: [TargetReport]
        var severity: Severity
    }

    func run() throws {
        var flags = SettingFlags()
        flags.set(.quickCheck, quick)
        flags.set(.maxErrors, maxErrors)
        if let recover { try salvage(into: recover, flags: flags) }
        let context = ToolContext(tool: "abathur-integrity", command: "check", options: common)
        if nagios { context.console.quiet = true }
        try context.run(flags: flags, { context -> (ExitCode, Output?) in
            do {
                let reports = try check(context.settings)
                let output = Output(targets: reports, severity: reports.map(\.severity).max() ?? .ok)
                report(reports, context: context)
                if nagios {
                    // The monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL.
                    throw ToolExit(status: [0, 1, 2, 2][Severity.allCases.firstIndex(of: output.severity)!])
                }
                return (overallExit(reports), output)
            } catch let error as AbathurError where nagios {
                context.console.writeOut("ABATHUR-INTEGRITY UNKNOWN - \(Escape.controlCharacters(error.description))\n")
                throw ToolExit(status: 3)
            }
        }, metrics: { sink, _, output in
            for target in output?.targets ?? [] {
                sink.gauge("abathur_integrity_severity", "Worst finding: 0 ok, 1 warning, 2 error, 3 critical.",
                           Double(Severity.allCases.firstIndex(of: target.severity)!), labels: [("target", target.path)])
                for finding in target.findings {
                    sink.gauge("abathur_integrity_check_ok", "1 when the check found nothing wrong.", finding.severity == .ok ? 1 : 0,
                               labels: [("target", target.path), ("check", finding.check)])
                }
            }
        })
    }

    func check(_ settings: Settings) throws -> [TargetReport] {
        let checker = IntegrityChecker(options: try IntegrityOptions(settings: settings))
        let directory = settings.string(.backupDir)
        if let path {
            // SQLite needs random access (FACTS.md 5): a pipe would have to be spooled first.
            guard path != "-" else { throw AbathurError.usage("reading a database from stdin is not supported yet; give a file") }
            if path.hasSuffix(".gz") {
                let manifestPath = path + BackupName.manifestSuffix
                let manifest = try FileStatus.of(manifestPath) != nil ? try Manifest.read(manifestPath) : nil
                return [try checker.checkGzip(path, manifest: manifest, requireManifest: false)]
            }
            return [try checker.checkDatabase(path, kind: .file, reference: nil)]
        }
        if let backup {
            let catalog = try Catalog.scan(directory)
            guard let entry = catalog.entry(named: backup) else {
                throw AbathurError(.usage, Paths.join(directory, Paths.basename(backup)), "no such backup")
            }
            return [try checker.checkGzip(entry.path, manifest: entry.manifest, manifestProblem: entry.manifestProblem, requireManifest: true)]
        }
        if allBackups || sample != nil {
            // A read-only backup directory (a DR share) is only read: no lock is taken there.
            let lock = try FileLock.acquireUnlessReadOnly(Paths.join(directory, Catalog.lockName), wait: try settings.value(.lockWait))
            defer { lock?.release() }
            let catalog = try Catalog.scan(directory)
            let names = catalog.entries.map(\.fileName)
            var state = SampleState.load(directory)
            let chosen = samplePercent.map { state.pick(names, percent: $0) } ?? names
            var reports: [TargetReport] = []
            for entry in catalog.entries where chosen.contains(entry.fileName) {
                reports.append(try checker.checkGzip(entry.path, manifest: entry.manifest, manifestProblem: entry.manifestProblem,
                                                     requireManifest: true))
            }
            // A read-only backup directory is not written: the picks are not recorded there.
            if sample != nil, lock != nil {
                try state.record(chosen, at: Int64(Clock.now()), existing: names, in: directory)
            }
            return reports
        }
        let database = settings.string(.database)
        let reference = (try? FileStatus.of(directory)) != nil ? (try? Catalog.scan(directory))?.complete.first?.manifest : nil
        return [try checker.checkDatabase(database, kind: .live, reference: reference)]
    }

    /// The worst target decides: a corrupt database, then a bad backup, then a foreign
    /// database, then warnings.
    func overallExit(_ reports: [TargetReport]) -> ExitCode {
        ExitCode.mostSevere(reports.map(\.exitCode))
    }

    func report(_ reports: [TargetReport], context: ToolContext) {
        let console = context.console
        if nagios {
            let worst = reports.map(\.severity).max() ?? .ok
            let state = ["OK", "WARNING", "CRITICAL", "CRITICAL"][Severity.allCases.firstIndex(of: worst)!]
            let problems = reports.flatMap { r in r.findings.filter { $0.severity != .ok }.map { "\(r.path): \($0.check): \($0.message)" } }
            // One line whatever a path or a message holds: a plugin's output is its first line.
            let summary = Escape.controlCharacters(problems.isEmpty ? "\(reports.count) target(s) checked, no problems" : problems.joined(separator: "; "))
            console.writeOut("ABATHUR-INTEGRITY \(state) - \(summary) | problems=\(problems.count) targets=\(reports.count)\n")
            return
        }
        if reports.isEmpty { console.result("no backups to check") }
        for target in reports {
            console.result("\(target.path): \(target.severity.rawValue)")
            for finding in target.findings {
                console.result("  \(finding.severity.rawValue.padding(8)) \(finding.check): \(finding.message)")
            }
            if let worst = target.findings.max(by: { $0.severity < $1.severity }), worst.severity >= .error {
                console.error(target.path, "\(worst.check): \(worst.message)")
            } else if let warning = target.findings.first(where: { $0.severity == .warning }) {
                context.warn("\(target.path): \(warning.check): \(warning.message)")
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
