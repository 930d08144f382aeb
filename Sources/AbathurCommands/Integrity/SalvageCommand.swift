import AbathurCore

/// `abathur-integrity --recover OUT [PATH] [--include-freelist] [--apply]`.
extension IntegrityTool {
    func salvage(into output: String, flags: SettingFlags) throws -> Never {
        let context = ToolContext(tool: "abathur-integrity", command: "recover", options: common)
        try context.run(flags: flags, { context -> (ExitCode, SalvageJob.Outcome?) in
            let restore = try RestoreRequest(settings: context.settings, toolVersion: AbathurVersion.current)
            var request = SalvageJob.Request(source: path ?? restore.database, live: path == nil, output: output, restore: restore)
            request.includeFreelist = includeFreelist
            request.apply = apply
            let job = SalvageJob(request: request, events: context.console.events)
            var failure: AbathurError?
            do { try job.run() } catch { failure = error as? AbathurError ?? AbathurError.internal("unexpected error: \(error)") }
            let outcome = job.outcome
            show(outcome, context)
            if let failure {
                context.report(failure)
                return (failure.exitCode, outcome)
            }
            if !outcome.outputSound {
                context.console.error(output, "the salvaged database fails its checks: \(outcome.checks.first { !$0.ok }?.detail ?? "?")")
                return (.verificationFailed, outcome)
            }
            if !outcome.clean { context.warn("\(output): salvaged with problems to look at (see above)") }
            return (outcome.clean ? .success : .warning, outcome)
        }, metrics: { sink, _, outcome in
            guard let outcome else { return }
            sink.gauge("abathur_integrity_salvage_rows", "Rows the last salvage recovered.", Double(outcome.recovered))
            sink.gauge("abathur_integrity_salvage_lost_and_found", "Rows the last salvage could not give a table.", Double(outcome.lostAndFound))
        })
    }

    func show(_ outcome: SalvageJob.Outcome, _ context: ToolContext) {
        let out = context.console
        if let copy = outcome.forensicCopy { out.result("forensic copy: \(copy)") }
        if let problem = outcome.headerProblem { out.result("header: \(problem); page size \(outcome.pageSize) from \(outcome.pageSizeFrom)") }
        if outcome.wal.present { out.result("wal: \(outcome.wal.detail)") }
        guard outcome.schemaFrom != nil else { return }
        out.result("schema from \(outcome.schemaFrom!.rawValue); \(outcome.pages) pages of \(outcome.pageSize) bytes; \(outcome.problems) problem(s) met")
        let compared = outcome.backup != nil && outcome.backupNote == nil
        out.result("table".padding(28) + "recovered".padding(11) + (compared ? "backup".padding(9) + "missing".padding(9) + "altered".padding(9) + "lost+found" : "manifest"))
        for table in outcome.tables {
            var line = table.name.padding(28) + String(table.recovered).padding(11)
            if compared {
                line += (table.inBackup.map(String.init) ?? "-").padding(9) + (table.missing.map(String.init) ?? "-").padding(9)
                    + (table.altered.map(String.init) ?? "-").padding(9) + (table.inLostAndFoundOnly.map(String.init) ?? "-")
            } else {
                line += table.inBackup.map(String.init) ?? "-"
            }
            out.result(line)
        }
        for table in outcome.tables where (table.altered ?? 0) > 0 {
            context.warn("\(table.name): \(table.altered!) row(s) differ from \(outcome.backup ?? "the backup"), e.g. rowid \(table.alteredRowids!.prefix(5).map(String.init).joined(separator: ", ")): check them, they may be damaged")
        }
        if outcome.lostAndFound > 0 { out.result("lost_and_found: \(outcome.lostAndFound) row(s) no table could be given (table \(outcome.lostAndFoundTable ?? "lost_and_found"))") }
        if let note = outcome.backupNote { context.warn(note) }
        for check in outcome.checks where !check.ok { out.result("check \(check.name): \(check.detail)") }
        if outcome.written { out.result("salvaged \(outcome.recovered) row(s) into \(outcome.output)") }
        if outcome.applied { out.result("installed in place of the live database; the corrupt original is in \(outcome.safetyCopy ?? "the safety copy")") }
    }
}
