import AbathurCore

/// What `abathur-diskcheck` prints and returns for a report, a `--dry-run` plan and a `--fix`.
enum DiskcheckCommands {
    enum Mode {
        case report, dryRun, fix
    }

    struct Request {
        var mode: Mode
        var target: DiskTarget?
        var includeManual: Bool
        var noServices: Bool
        var nagios: Bool
    }

    /// `--json`'s result: the report, what the run did about the reserve, the fix or its plan,
    /// and the report after a fix.
    struct Output: Encodable {
        var report: DiskReport
        var reserve: Reserve.Upkeep?
        var fix: DiskFix.Outcome?
        var after: DiskReport?
        var verdict: String
    }

    static func run(_ request: Request, _ context: ToolContext) throws -> (ExitCode, Output?) {
        let settings = context.settings!
        let places = DiskReport.Places(settings: settings)
        let thresholds: DiskThresholds
        let report: DiskReport
        var upkeep: Reserve.Upkeep?
        do {
            thresholds = try DiskThresholds(settings: settings)
            // Only a plain report keeps the reserve: a fix is releasing it, and a monitoring
            // plugin only looks.
            if request.mode == .report, !request.nagios, try FileStatus.of(Paths.directory(of: places.database))?.isDirectory == true {
                do {
                    upkeep = try Reserve.upkeep(database: places.database, configured: try settings.value(.reserve), thresholds: thresholds)
                } catch let error as AbathurError {
                    context.warn("\(Reserve.path(forDatabase: places.database)): reserve not kept: \(error.description)")
                }
            }
            var made = try DiskReport.make(places, settings: settings, thresholds: thresholds)
            if let upkeep {
                made.reserve = upkeep.reserve
                if upkeep.isWarning { made.warnings.append(upkeep.detail) }
            } else {
                do {
                    made.reserve = try Reserve.look(database: places.database, configured: try settings.value(.reserve))
                } catch let error as AbathurError where error.kind != .usage {
                    made.warnings.append(error.description)
                }
            }
            report = made
        } catch let error as AbathurError where request.nagios {
            context.console.writeOut("ABATHUR-DISKCHECK UNKNOWN - \(Escape.controlCharacters(error.description))\n")
            throw ToolExit(status: 3)
        }
        if request.nagios { try nagios(report, context) }
        let out = context.console
        // What this run did first, then what it found.
        if let upkeep, upkeep.action == "created" || upkeep.action == "deleted" { out.result("reserve: \(upkeep.detail)") }
        describe(report, out)
        var output = Output(report: report, reserve: upkeep, fix: nil, after: nil, verdict: report.level.name)
        if request.mode == .report {
            return (finish(report, context), output)
        }

        let target = request.target ?? thresholds.warningTarget
        let units = Units(request.noServices ? [] : try settings.value(.services))
        let options = DiskFix.Options(target: target, includeManual: request.includeManual, units: units,
                                      busyTimeoutMs: try settings.value(.busyTimeoutMs), lockWait: try settings.value(.lockWait),
                                      dryRun: request.mode == .dryRun)
        let fix = DiskFix(settings: settings, places: places, thresholds: thresholds, options: options, events: out.events)
        var failure: AbathurError?
        do { try fix.run() } catch let error as AbathurError { failure = error }
        output.fix = fix.outcome
        out.result("\(request.mode == .dryRun ? "plan" : "fix"): until every filesystem is \(target.description)")
        for step in fix.outcome.steps {
            let bytes = step.freedBytes.map { ", freed \(Bytes.describe($0))" }
                ?? (step.status == "would run" ? ", about \(Bytes.describe(step.estimatedBytes))" : "")
            out.result("step \(step.number), \(step.name): \(step.status)\(bytes): \(step.detail)")
        }
        for line in fix.outcome.vacuumPlan { out.result("vacuum plan: \(line)") }
        for warning in fix.outcome.warnings { context.warn(warning) }
        if let failure {
            context.report(failure)
            return (failure.exitCode, output)
        }
        if request.mode == .dryRun {
            out.result("plan: \(fix.outcome.reached ? "reaches the target" : "does NOT reach the target") (estimated \(Bytes.describe(fix.outcome.steps.map(\.estimatedBytes).reduce(0, +))))")
            return (finish(report, context), output)
        }
        let after = try DiskReport.make(places, settings: settings, thresholds: thresholds)
        output.after = after
        output.verdict = after.level.name
        out.result("freed \(Bytes.describe(fix.outcome.freedBytes)); target \(fix.outcome.reached ? "reached" : "NOT reached")")
        for volume in after.volumes { out.result("after: " + line(volume)) }
        return (finish(after, context), output)
    }

    /// Reports what needs attention and picks the exit code: the level's (0, 1, 6), or the
    /// database's problem when that is worse.
    static func finish(_ report: DiskReport, _ context: ToolContext) -> ExitCode {
        for volume in report.volumes where volume.level != .ok {
            let text = "\(volume.paths[0]) (\(volume.roles.joined(separator: ", "))): \(volume.findings.map(\.message).joined(separator: "; "))"
            if volume.level == .critical { context.report(AbathurError(.noSpace, volume.paths[0], volume.findings.map(\.message).joined(separator: "; "))) }
            else { context.warn(text) }
        }
        for warning in report.warnings { context.warn(warning) }
        var codes = [report.level.exitCode]
        if let problem = report.databaseProblem {
            context.report(problem.error)
            codes.append(problem.error.exitCode)
        }
        context.console.result("verdict: \(report.level.name)")
        return ExitCode.mostSevere(codes)
    }

    static func line(_ volume: DiskReport.Volume) -> String {
        let fs = volume.filesystem
        let inodes = volume.inodesUsedPercent.map { "; inodes \(Percent.describe($0)) used, \(fs.freeInodes) free" } ?? ""
        let root = fs.freeBytesForRoot != fs.freeBytes ? " (\(Bytes.describe(fs.freeBytesForRoot)) for root)" : ""
        return "\(volume.paths[0]) (\(volume.roles.joined(separator: ", "))): \(Percent.describe(volume.usedPercent)) used, \(Bytes.describe(fs.freeBytes)) free\(root) of \(Bytes.describe(fs.totalBytes))\(inodes)\(fs.readOnly ? "; READ-ONLY" : ""): \(volume.level.name)"
    }

    static func describe(_ report: DiskReport, _ out: Console) {
        for volume in report.volumes { out.result("filesystem: " + line(volume)) }
        if let db = report.database {
            out.result("database \(db.database): \(Bytes.describe(db.logicalBytes)) (\(db.pageCount) pages of \(db.pageSize) bytes, header from the \(db.headerSource)), main file \(Bytes.describe(db.mainBytes)), -wal \(Bytes.describe(db.walBytes)), -shm \(Bytes.describe(db.shmBytes)); freelist \(Bytes.describe(db.freelistBytes)) (\(db.freelistPages) pages, reclaimable by VACUUM); auto_vacuum \(db.autoVacuum.rawValue)")
        }
        if let backups = report.backups {
            let range = backups.oldest.map { " from \($0) to \(backups.newest!)" } ?? ""
            out.result("backups \(backups.directory): \(backups.count) (\(backups.complete) verified), \(Bytes.describe(backups.bytes))\(range)")
        } else {
            out.result("backups: none (no backup directory)")
        }
        let leftovers = [("safety copies", report.safetyCopies), ("aside directories", report.asideDirectories),
                         ("incident records", report.incidentRecords), ("forensic copies", report.forensicCopies)]
        out.result("left by restores and repairs: " + leftovers.map { "\($0.0) \($0.1.count)" + ($0.1.count > 0 ? " (\(Bytes.describe($0.1.bytes)))" : "") }.joined(separator: ", "))
        let temps = report.staleTemps.map(\.count).reduce(0, +)
        out.result("stale temp files: \(temps)" + (temps > 0 ? " (\(Bytes.describe(report.staleTemps.map(\.bytes).reduce(0, +)))) in " + report.staleTemps.map(\.directory).joined(separator: ", ") : ""))
        if let reserve = report.reserve {
            let state = reserve.verified ? "\(Bytes.describe(reserve.configuredBytes!)), allocated"
                : reserve.configuredBytes == nil ? (reserve.presentBytes == nil ? "not configured" : "not configured, but a ballast file is there")
                : reserve.presentBytes == nil ? "MISSING (\(Bytes.describe(reserve.configuredBytes!)) configured)" : "not the configured \(Bytes.describe(reserve.configuredBytes!))"
            out.result("reserve \(reserve.path): \(state)")
        }
        if report.nextBackup.need != nil || !report.nextBackup.detail.isEmpty {
            out.result("next backup: \(report.nextBackup.detail)\(report.nextBackup.need.map { $0.fits ? ": fits" : ": does NOT fit" } ?? "")")
        }
        out.result("vacuum: \(report.vacuum.detail)")
        if let growth = report.growth { out.result("growth: \(growth.detail)") }
    }

    /// One monitoring-plugin line, then the exit (0 OK, 1 WARNING, 2 CRITICAL); a database
    /// that cannot be read makes it a WARNING at least, named in the line.
    static func nagios(_ report: DiskReport, _ context: ToolContext) throws -> Never {
        var level = report.level
        var problems = report.volumes.filter { $0.level != .ok }.map { "\($0.paths[0]): \($0.findings.map(\.message).joined(separator: "; "))" }
        problems += report.warnings
        if let problem = report.databaseProblem {
            problems.append(problem.error.description)
            level = max(level, .warning)
        }
        let state = ["OK", "WARNING", "CRITICAL"][level.rawValue]
        let summary = problems.isEmpty
            ? report.volumes.map { "\($0.paths[0]) \(Percent.describe($0.usedPercent)) used" }.joined(separator: ", ")
            : problems.joined(separator: "; ")
        let perfdata = report.volumes.map { volume -> String in
            let fs = volume.filesystem
            let size = fs.usedBytes + fs.freeBytes
            let warn = Int64(Double(size) * report.thresholds.warnPercent / 100), crit = Int64(Double(size) * report.thresholds.critPercent / 100)
            return "'\(volume.paths[0])'=\(fs.usedBytes)B;\(warn);\(crit);0;\(size)"
        }.joined(separator: " ")
        context.console.writeOut("ABATHUR-DISKCHECK \(state) - \(Escape.controlCharacters(summary)) | \(Escape.controlCharacters(perfdata))\n")
        throw ToolExit(status: Int32(level.rawValue))
    }

    static func metrics(_ sink: inout PrometheusMetrics, _ code: ExitCode, _ output: Output?) {
        guard let output else { return }
        let report = output.after ?? output.report
        sink.gauge("abathur_diskcheck_level", "0 ok, 1 warning, 2 critical.", Double(report.level.rawValue))
        for volume in report.volumes {
            let labels = [("path", volume.paths[0]), ("roles", volume.roles.joined(separator: ","))]
            let fs = volume.filesystem
            sink.gauge("abathur_diskcheck_filesystem_size_bytes", "Size of a filesystem the database needs.", Double(fs.totalBytes), labels: labels)
            sink.gauge("abathur_diskcheck_filesystem_free_bytes", "Bytes free for unprivileged writers.", Double(fs.freeBytes), labels: labels)
            sink.gauge("abathur_diskcheck_filesystem_used_ratio", "Used over used plus available, as df's Use%.", volume.usedPercent / 100, labels: labels)
            if let inodes = volume.inodesUsedPercent {
                sink.gauge("abathur_diskcheck_filesystem_inodes_used_ratio", "Inodes used over used plus available.", inodes / 100, labels: labels)
            }
            sink.gauge("abathur_diskcheck_filesystem_level", "0 ok, 1 warning, 2 critical.", Double(volume.level.rawValue), labels: labels)
        }
        if let db = report.database {
            sink.gauge("abathur_diskcheck_database_bytes", "The database as SQLite sees it (pages times page size).", Double(db.logicalBytes))
            sink.gauge("abathur_diskcheck_wal_bytes", "Size of the -wal.", Double(db.walBytes))
            sink.gauge("abathur_diskcheck_freelist_bytes", "Free pages inside the database (reclaimable by VACUUM).", Double(db.freelistBytes))
        }
        if let backups = report.backups {
            sink.gauge("abathur_diskcheck_backups", "Backups in the backup directory.", Double(backups.count))
            sink.gauge("abathur_diskcheck_backup_bytes", "Bytes the backups and their manifests take.", Double(backups.bytes))
        }
        if let reserve = report.reserve, reserve.configuredBytes != nil {
            sink.gauge("abathur_diskcheck_reserve_ok", "1 when the configured reserve is there and allocated.", reserve.verified ? 1 : 0)
        }
        sink.gauge("abathur_diskcheck_next_backup_fits", "1 when the next backup's preflight would pass.", report.nextBackup.need?.fits == true ? 1 : 0)
        if let days = report.growth?.daysUntilFull {
            sink.gauge("abathur_diskcheck_days_until_full", "Days until the database's filesystem is full at the recent growth rate.", days)
        }
        if let fix = output.fix, !fix.dryRun {
            sink.gauge("abathur_diskcheck_fix_freed_bytes", "Bytes the last --fix freed.", Double(fix.freedBytes))
        }
    }
}
