import AbathurCore

/// What `abathur-restore` prints and returns for a restore, a fresh start, a plan and a drill.
enum RestoreCommands {
    static func restore(_ request: RestoreRequest, kind: RestoreJob.Kind, _ context: ToolContext) throws -> (ExitCode, RestoreJob.Outcome?) {
        let console = context.console
        let job = RestoreJob(request: request, events: console.events, kind: kind)
        // RestoreJob.run throws only AbathurError, after recording the outcome.
        var failure: AbathurError?
        do { try job.run() } catch { failure = error as? AbathurError ?? AbathurError.internal("unexpected error: \(error)") }
        let outcome = job.outcome
        if let problem = outcome.incidentRecordProblem {
            context.warn("the incident record could not be written: \(problem)")
        }
        for warning in outcome.warnings { context.warn(warning) }
        for path in outcome.pruned { console.info("removed \(path) (safety_keep, safety_max_age)") }
        if let failure {
            context.report(failure)
            if let record = outcome.incidentRecord { console.result("incident record: \(record)") }
            return (failure.exitCode, outcome)
        }
        let what = kind == .reinit ? "a fresh database from init_command" : (outcome.source?.path ?? "stdin")
        console.result("restored \(request.database) from \(what) in \(Double(outcome.totalMs) / 1000)s")
        if let copy = outcome.safetyCopy { console.result("safety copy: \(copy.directory)") }
        if let record = outcome.incidentRecord { console.result("incident record: \(record)") }
        // Restored, but something needs a look (user_version differs, --force, no record).
        return (context.warnings.isEmpty ? .success : .warning, outcome)
    }

    static func restoreMetrics(_ sink: inout PrometheusMetrics, _ code: ExitCode, _ outcome: RestoreJob.Outcome?) {
        guard let outcome else { return }
        sink.gauge("abathur_restore_duration_seconds", "Duration of the last restore.", Double(outcome.totalMs) / 1000)
        sink.gauge("abathur_restore_rolled_back", "1 when the last restore was rolled back.", outcome.rolledBack ? 1 : 0)
        // One series per step name (node_exporter rejects a file with duplicates): the last run of it.
        var seconds: [String: Double] = [:]
        for step in outcome.steps { seconds[step.name] = Double(step.durationMs) / 1000 }
        for name in seconds.keys.sorted() {
            sink.gauge("abathur_restore_step_seconds", "Duration of each step of the last restore.", seconds[name]!, labels: [("step", name)])
        }
    }

    static func plan(_ request: RestoreRequest, _ context: ToolContext) throws -> (ExitCode, RestorePlan?) {
        let plan = try RestorePlan.make(request)
        let out = context.console
        let source = plan.source
        let facts = source.manifest.map { m in " (created \(m.created), \(Bytes.describe(m.gz.bytes)) compressed, \(Bytes.describe(m.database.bytes)) database, verified)" } ?? ""
        out.result("plan: restore \(source.path ?? "stdin")\(facts)")
        let current = plan.currentFiles.keys.sorted().map { "\($0) \(Bytes.describe(plan.currentFiles[$0]!))" }
        out.result("  into \(plan.database)" + (current.isEmpty ? " (does not exist yet)" : " (now: \(current.joined(separator: ", ")))"))
        for (i, step) in plan.steps.enumerated() { out.result("  \(i + 1). \(step)") }
        var code = ExitCode.success
        for space in plan.space {
            let usable = space.usableBytes < space.freeBytes ? " (\(Bytes.describe(space.usableBytes)) usable: the filesystem stays at or below \(SpaceBudget.maxUsedPercent)% used)" : ""
            out.result("  space: \(space.directory): needs \(Bytes.describe(space.neededBytes)), \(Bytes.describe(space.freeBytes)) free\(usable)\(space.enough ? "" : ": NOT ENOUGH")")
        }
        if let shortage = plan.space.compactMap(\.shortage).first {
            context.report(shortage)
            code = .noSpace
        }
        // The source checked as the restore will check it: the same verdict as verify and integrity.
        var checked = plan
        do {
            let check = try SourceCheck.run(plan.source, request: request)
            checked.check = check
            if let skipped = check.skipped {
                out.result("  check: not now: \(skipped)")
            } else if let failure = check.failure {
                out.result("  check: FAILED: \(check.problems.joined(separator: "; "))")
                context.report(failure)
                code = ExitCode.mostSevere([code, failure.exitCode])
            } else {
                out.result("  check: ok, inflated into \(request.tempDir) and removed: \(check.checks.map(\.name).joined(separator: ", ")) passed"
                           + (source.manifest == nil ? "" : "; hashes, schema and row counts match the manifest"))
                for warning in check.warnings { context.warn(warning) }
                if code == .success && !check.warnings.isEmpty { code = .warning }
            }
        } catch let error as AbathurError {
            context.report(error)
            code = ExitCode.mostSevere([code, error.exitCode])
        }
        out.result("dry run: nothing was changed")
        return (code, checked)
    }

    static func drill(_ request: RestoreRequest, _ context: ToolContext) throws -> (ExitCode, Drill.Report?) {
        let report = try Drill.run(request, events: context.console.events)
        let out = context.console
        let steps = report.steps.filter { $0.name != "compare with the live database" }.map { "\($0.name) \(Double($0.durationMs) / 1000)s" }
        out.result("drill: \(report.source.path ?? "stdin") restored and checked in \(report.timeToRecoverSeconds)s (\(steps.joined(separator: ", ")))")
        for row in report.rowCounts {
            let live = row.live.map { "live \($0) (\($0 - row.backup >= 0 ? "+" : "")\($0 - row.backup))" } ?? "live: missing"
            out.result("  \(row.table.padding(16)) backup \(row.backup), \(live)")
        }
        for warning in report.warnings { context.warn(warning) }
        return (report.warnings.isEmpty ? .success : .warning, report)
    }

    static func drillMetrics(_ sink: inout PrometheusMetrics, _ code: ExitCode, _ report: Drill.Report?) {
        sink.gauge("abathur_restore_drill_ok", "1 when the last drill restored and checked the backup.", code == .success || code == .warning ? 1 : 0)
        guard let report else { return }
        sink.gauge("abathur_restore_drill_time_to_recover_seconds", "Measured time to locate, decompress and check the newest backup.", report.timeToRecoverSeconds)
        for step in report.steps where step.name != "lock" {
            sink.gauge("abathur_restore_drill_step_seconds", "Duration of each step of the last drill.", Double(step.durationMs) / 1000, labels: [("step", step.name)])
        }
    }
}
