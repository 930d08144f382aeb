import AbathurCore
#if canImport(Glibc)
import Glibc
#endif

/// What `abathur-restore --migrate` prints and returns.
enum MigrateCommands {
    /// Where the package ships its migrations; `ABATHUR_MIGRATIONS_DIR` points elsewhere (tests).
    static var shippedDirectory: String {
        getenv("ABATHUR_MIGRATIONS_DIR").map { String(cString: $0) } ?? "/usr/share/abathur-tools/migrations"
    }

    /// A path (it contains '/' or ends in .sql), or the name of a shipped migration.
    static func resolve(_ name: String) throws -> String {
        if name.contains("/") || name.hasSuffix(".sql") { return name }
        let path = Paths.join(shippedDirectory, name + ".sql")
        guard try FileStatus.of(path) == nil else { return path }
        let known = ((try? SafeFiles.listDirectory(shippedDirectory)) ?? []).filter { $0.hasSuffix(".sql") }.map { String($0.dropLast(4)) }
        throw AbathurError(.usage, path, "no shipped migration '\(name)'" + (known.isEmpty ? "" : " (shipped: \(known.joined(separator: ", ")))") + "; give a path to an SQL file")
    }

    static func migrate(_ name: String, mode: MigrationJob.Mode, expectTables: [String]?, request: RestoreRequest,
                        _ context: ToolContext) throws -> (ExitCode, MigrationJob.Outcome?) {
        let settings = context.settings!
        let script = try MigrationScript.read(try resolve(name))
        let backup = try BackupRequest(settings: settings, toolVersion: AbathurVersion.current)
        let job = MigrationJob(request: request, backup: backup, script: script, mode: mode, expectTables: expectTables,
                               configuredTables: try settings.value(.expectTables), events: context.console.events)
        var failure: AbathurError?
        do { try job.run() } catch { failure = error as? AbathurError ?? AbathurError.internal("unexpected error: \(error)") }
        var outcome = job.outcome
        let out = context.console
        // A real run that got past the lock leaves a record, whatever its end.
        if mode == .migrate, outcome.steps.contains(where: { $0.name == "stop units" || $0.name == "prove nothing holds the database" }) {
            let code = failure?.exitCode ?? (outcome.warnings.isEmpty ? .success : .warning)
            do {
                outcome.incidentRecord = try job.writeRecord(exitCode: code, error: failure)
            } catch {
                context.warn("the incident record could not be written: \(error)")
            }
        }
        // What each statement changed, when it stood: after a failure it was all rolled back.
        for statement in outcome.statements where failure == nil {
            out.result("line \(statement.line): \(statement.changes) row(s): \(statement.display)")
        }
        if let diff = outcome.diff { out.result("schema: \(diff.summary)") }
        if let audit = outcome.audit { out.result("foreign keys: \(audit.summary)") }
        if let backup = outcome.backup { out.result("restore point: \(backup)") }
        if let ms = outcome.unitsStoppedMs {
            out.result(mode == .migrate ? "units stopped for \(Double(ms) / 1000)s"
                : "units would be stopped for about \(Double(ms) / 1000)s (two copies of the database, the pre-migrate backup as long as the newest backup took, the file and the checks)")
        }
        if let record = outcome.incidentRecord { out.result("incident record: \(record)") }
        for warning in outcome.warnings { context.warn(warning) }
        if let tables = outcome.newExpectTables { out.result("set in the config: expect_tables = \(tables)") }
        if let count = outcome.newExpectMinIndexes { out.result("set in the config: expect_min_indexes = \(count)") }
        if let failure {
            context.report(failure)
            return (failure.exitCode, outcome)
        }
        out.result(mode == .migrate ? "migrated \(request.database) with \(script.path) in \(Double(outcome.totalMs) / 1000)s"
                   : "\(mode.rawValue): \(script.path) applies to a copy of \(request.database) and passes every check; nothing live was changed")
        return (context.warnings.isEmpty ? .success : .warning, outcome)
    }

    static func metrics(_ sink: inout PrometheusMetrics, _ code: ExitCode, _ outcome: MigrationJob.Outcome?) {
        guard let outcome, outcome.mode == .migrate else { return }
        sink.gauge("abathur_restore_migrate_duration_seconds", "Duration of the last migration.", Double(outcome.totalMs) / 1000)
        if let ms = outcome.unitsStoppedMs {
            sink.gauge("abathur_restore_migrate_units_stopped_seconds", "How long the units were stopped for the last migration.", Double(ms) / 1000)
        }
    }
}
