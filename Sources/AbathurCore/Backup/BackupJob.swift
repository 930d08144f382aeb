#if canImport(Glibc)
import Glibc
#endif

/// One backup, start to finish (SPEC.md, `abathur-backup`):
///
/// lock → finish an interrupted publish, sweep stale temp files, SHA256SUMS (`Catalog.recover`) → free-space preflight → snapshot with the online backup API
/// into a temp file → make it self-contained (`journal_mode=DELETE`) → checks, and beside them
/// gzip on every core while hashing, then read the `.gz` back (inflated on every core) and
/// compare → publish the `.gz` → manifest last →
/// `SHA256SUMS` → retention.
///
/// Until the `.gz` gets its final name nothing but temp files exists, and every error path
/// removes those; a SIGKILL leaves only temp files, which the next run sweeps, or, between the
/// two links of `publish`, a `.gz` whose manifest the next locked run links from the killed
/// run's temp manifest.
public final class BackupJob {
    public struct Outcome: Sendable {
        public var manifest: Manifest
        /// The published `.gz`; nil with `toStdout`.
        public var path: String?
        public var swept: [String]
        public var retention: [RetentionPolicy.Decision]
        public var removed: [String]
    }

    let request: BackupRequest
    let events: EventSink
    private var temps: [String] = []

    /// `events` hears of each step (snapshot, checks, compress, reverify) as it ends, the
    /// progress of the snapshot and the compression, and what the lock step recovered.
    public init(request: BackupRequest, events: EventSink = .ignore) {
        self.request = request
        self.events = events
    }

    deinit {
        for path in temps { SafeFiles.removeQuietly(path) }
    }

    /// Takes the backup. `directoryLocked`: the caller already holds the backup directory's
    /// lock (a migration's pre-migrate backup), so this run does not take it again.
    public func run(directoryLocked: Bool = false) throws -> Outcome {
        let started = Clock.monotonicSeconds()
        let timeline = Timeline(events: events)
        let directory = request.backupDir
        try SafeFiles.ensureDirectory(directory)
        let lock = directoryLocked ? nil : try FileLock.acquire(Paths.join(directory, Catalog.lockName), wait: request.lockWait)
        defer { lock?.release() }
        let recovery = Catalog.recover(directory)
        for line in recovery.summary { events.info(line) }
        for problem in recovery.problems { events.warning(problem) }
        let swept = recovery.swept

        // The source: read its header raw, before SQLite opens it (FACTS.md 14).
        let source = request.database
        guard try FileStatus.of(source) != nil else { throw AbathurError(.notFound, source, "no such database") }
        let (header, fileSize) = try DatabaseHeader.read(source, followSymlinks: true)
        let walSize = try DatabaseFiles(source).size(of: [.wal])
        let estimate = BackupJob.estimate(fileSize: fileSize, header: header, walSize: walSize)
        try preflight(directory: directory, estimate: estimate)

        // FACTS.md 10: behind a broken WAL frame SQLite silently drops every later commit, and
        // the snapshot, SQLite's view, lacks them. Look before and after the snapshot (a
        // checkpoint in between would make the loss permanent and the WAL look clean).
        let lossBefore = header.isWAL ? try walLoss(of: source) : nil
        let createdAt = Clock.now()
        let snapshot = try timeline.step("snapshot") { try takeSnapshot(of: source, in: directory) }
        let lossAfter = lossBefore == nil && header.isWAL ? try walLoss(of: source) : nil
        let walLoss = lossBefore ?? lossAfter
        if let walLoss, request.toStdout {
            throw AbathurError(.walLoss, walLoss.wal, "\(walLoss.detail); the snapshot lacks them, so it is not streamed; nothing was written; run abathur-walfix")
        }

        // The checks run on a thread of their own while the snapshot is compressed: both only
        // read it. A failed check stops the compression; either way the checks' verdict comes
        // first, as if they had run alone.
        let gzTemp = SafeFiles.tempPath(in: directory, tag: "backup.db.gz")
        let cancellation = Cancellation()
        let checksStart = Timeline.Start()
        // One connection: the compression keeps the other cores busy (splitting integrity_check
        // costs CPU, measured slower here).
        var checkOptions = request.check
        checkOptions.parallel = false
        let checking = try BackgroundWork { [checkOptions] () -> DatabaseCheck in
            do {
                let report = try DatabaseCheck.run(path: snapshot, options: checkOptions)
                if report.foreign != nil || report.failure != nil { cancellation.cancel(BackupJob.checksFailed) }
                return report
            } catch {
                cancellation.cancel(BackupJob.checksFailed)
                throw error
            }
        }
        let compressed = Result {
            let written = try timeline.step("compress") {
                let written = try compress(snapshot, into: gzTemp, cancellation: cancellation)
                return (written, "\(written.rawBytes) bytes into \(written.gzBytes) (level \(request.compressionLevel), \(ParallelGzip.workerCount) thread(s), beside the checks)")
            }
            // Read back what is on disk, not what we meant to write: every member inflated
            // against its CRC-32, both sides' SHA-256 compared (still beside the checks).
            try cancellation.check()
            try timeline.step("reverify") {
                let readBack = try GzipFile.digest(of: gzTemp)
                guard readBack == written else {
                    throw AbathurError(.damagedBackup, gzTemp, "read-back mismatch: wrote sha256 \(written.gzSHA256), read \(readBack.gzSHA256)")
                }
                return ((), "inflated and matched sha256")
            }
            return written
        }
        let report: DatabaseCheck
        do {
            report = try checking.join()
            timeline.record("checks", since: checksStart, until: checking.finished, ok: true, detail: report.checks.map { "\($0.name) \($0.ok ? "ok" : "FAILED")" }.joined(separator: ", "))
        } catch var error as AbathurError where error.kind == .corrupt || error.kind == .notADatabase {
            timeline.record("checks", since: checksStart, until: checking.finished, ok: false, detail: "\(error)")
            // The copy is the source as SQLite read it: its corruption is the source's.
            error.path = source
            throw error
        } catch {
            timeline.record("checks", since: checksStart, until: checking.finished, ok: false, detail: "\(error)")
            throw error
        }
        if let foreign = report.foreign { throw AbathurError(.foreign, source, foreign) }
        if let failed = report.failure {
            throw AbathurError(.corrupt, source, "\(failed.name) failed: \(failed.detail)")
        }
        let written = try compressed.get()
        let expectedRaw = report.pageCount * Int64(report.pageSize)
        guard written.rawBytes == expectedRaw else {
            throw AbathurError(.internal, snapshot, "snapshot is \(written.rawBytes) bytes, expected \(expectedRaw)")
        }

        try SafeFiles.remove(snapshot)
        temps.removeAll { $0 == snapshot }

        let catalog = try Catalog.scan(directory)
        // A snapshot that lacks committed data is kept (it may be the best one there is) as a
        // manual backup, so retention never prunes it nor counts it toward the floor, and
        // marked not verified, so no restore picks it unless named by path.
        let (kind, label) = walLoss == nil ? (request.kind, request.label) : (BackupName.Kind.manual, BackupJob.walLossLabel)
        let name = request.toStdout
            ? BackupName(kind: kind, label: label, time: Int64(createdAt))
            : try catalog.freeName(kind: kind, label: label, time: Int64(createdAt))
        var durations: [String: Int64] = [:]
        for step in timeline.steps { durations[step.name] = step.durationMs }
        durations["total"] = Int64((Clock.monotonicSeconds() - started) * 1000)
        let manifest = Manifest(
            format: Manifest.currentFormat, name: name.fileName, kind: kind, label: label,
            created: Clock.iso8601(Int64(createdAt)), createdUnix: Int64(createdAt),
            source: Paths.absolute(source), toolVersion: request.toolVersion,
            sqliteVersion: Connection.libraryVersion, compressionLevel: request.compressionLevel,
            gz: .init(sha256: written.gzSHA256, bytes: written.gzBytes),
            database: .init(sha256: written.rawSHA256, bytes: written.rawBytes, pageSize: report.pageSize,
                            pageCount: report.pageCount, freelistCount: report.freelistCount,
                            userVersion: report.userVersion, applicationId: report.applicationId),
            schema: report.schema, rowCounts: report.rowCounts,
            checks: report.checks + [Manifest.Check(name: "gzip_readback", ok: true, detail: "inflated and matched sha256")]
                + (walLoss.map { [Manifest.Check(name: "wal", ok: false, detail: $0.detail)] } ?? []),
            verified: walLoss == nil, durationsMs: durations, walLoss: walLoss)

        if request.toStdout {
            try stream(gzTemp)
            return Outcome(manifest: manifest, path: nil, swept: swept, retention: [], removed: [])
        }

        let final = try publish(gzTemp, manifest: manifest, as: name, in: directory)
        if let walLoss {
            // No verified success: no retention, and SHA256SUMS lists verified backups only.
            throw AbathurError(.walLoss, walLoss.wal, "\(walLoss.detail); the backup lacks them: kept as \(final) (not verified, never pruned automatically); run abathur-walfix")
        }

        let decisions = try request.retention.plan(Catalog.scan(directory), now: Clock.now())
        let removed = try request.retention.apply(decisions, in: directory)
        try Catalog.writeSums(directory)
        return Outcome(manifest: manifest, path: final, swept: swept, retention: decisions, removed: removed)
    }

    /// Gives the `.gz` and then its manifest their final names. Both are complete and fsynced
    /// under temp names first; if either link or the directory fsync fails, the final names
    /// are removed again (manifest first), so a failed run adds no backup. The manifest's
    /// presence is what marks the backup complete.
    func publish(_ gzTemp: String, manifest: Manifest, as name: BackupName, in directory: String) throws -> String {
        let manifestFile = try SafeFiles.createTemp(in: directory, tag: name.manifestName)
        temps.append(manifestFile.path)
        try manifestFile.write(try manifest.encoded())
        try manifestFile.sync()
        try manifestFile.close()
        let final = Paths.join(directory, name.fileName)
        let finalManifest = Paths.join(directory, name.manifestName)
        // From the first link on, a SIGTERM must leave the temp manifest, as a SIGKILL does:
        // it is what the next locked run finishes the publish from (`Catalog.recover`).
        TerminationCleanup.unregister(manifestFile.path)
        var published: [String] = []
        do {
            try SafeFiles.link(gzTemp, as: final)
            published.append(final)
            try SafeFiles.link(manifestFile.path, as: finalManifest)
            published.append(finalManifest)
            try SafeFiles.syncDirectory(directory)
        } catch {
            for path in published.reversed() { SafeFiles.removeQuietly(path) }
            throw error
        }
        for temp in [gzTemp, manifestFile.path] {
            try SafeFiles.remove(temp)
            temps.removeAll { $0 == temp }
        }
        return final
    }

    /// The label of a backup whose snapshot lacks commits the live WAL holds.
    public static let walLossLabel = "wal-loss"

    /// What the live `-wal` holds that SQLite's view drops, read offline (never through
    /// SQLite, never written); nil when nothing committed is lost.
    func walLoss(of source: String) throws -> Manifest.WALLoss? {
        let path = DatabaseFiles(source).wal
        guard try FileStatus.of(path)?.isRegular == true else { return nil }
        let wal = try WALInspection.inspectConfirmed(path)
        guard let detail = wal.lossDescription else { return nil }
        return Manifest.WALLoss(wal: path, droppedCommits: wal.droppedCommits, droppedFrames: wal.droppedFrames,
                                firstInvalidFrame: wal.firstInvalidFrame, reason: wal.headerProblem ?? wal.invalidReason ?? "",
                                detail: detail)
    }

    /// The size of the database a backup copies: its pages or its file, whichever is larger,
    /// plus its `-wal`.
    public static func estimate(fileSize: Int64, header: DatabaseHeader, walSize: Int64) -> Int64 {
        max(fileSize, header.pageCountIsValid ? Int64(header.pageCount) * Int64(header.pageSize) : 0) + walSize
    }

    /// What a backup of an `estimate`-byte database writes at most: the snapshot plus a
    /// worst-case `.gz`. Its preflight requires that (and the margin) free.
    public static func spaceNeeded(estimate: Int64) -> Int64 { estimate * 2 }

    /// Exit 6 before writing anything when the snapshot plus a worst-case `.gz` cannot fit.
    func preflight(directory: String, estimate: Int64) throws {
        try SpaceBudget.of(directory, headroom: .allFree)
            .require(BackupJob.spaceNeeded(estimate: estimate), for: "a backup of this \(estimate)-byte database (snapshot plus worst-case compressed copy)")
    }

    /// FACTS.md 2: one read transaction on the source for the whole copy gives a consistent
    /// snapshot while the service writes; without one, a stepped copy restarts on each write.
    /// Returns the snapshot's path and how it was copied.
    func takeSnapshot(of source: String, in directory: String) throws -> (String, String) {
        let file = try SafeFiles.createTemp(in: directory, tag: "snapshot.db")
        temps.append(file.path)
        temps.append(DatabaseFiles(file.path).journal)
        try file.close()
        let copied: String
        do {
            let destination = try Connection(path: file.path, mode: .readWrite, busyTimeoutMs: request.busyTimeoutMs)
            // The destination is a temp file that only counts once fsynced and checked, so
            // it needs no journal of its own.
            try destination.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")
            copied = try copy(source: source, to: destination)
            // FACTS.md, header: the copy keeps bytes 18/19 = 2 (WAL). DELETE makes the backup
            // one self-contained file.
            try destination.execute("PRAGMA journal_mode=DELETE")
        } catch let error as SQLiteError {
            // Errors reading the source name the source; errors writing name the directory,
            // since the temp file they happened in is gone when the operator looks.
            if error.path != file.path || error.kind == .corrupt || error.kind == .notADatabase {
                var mapped = error.asAbathurError
                mapped.path = source
                throw mapped
            }
            // FACTS.md 16: RLIMIT_FSIZE shows up as SQLITE_IOERR_WRITE, not SQLITE_FULL, and
            // SQLite's saved errno is not reliable; look at the limits ourselves.
            if let reason = SpaceProbe.diagnose(file: file.path, directory: directory) {
                throw AbathurError(.noSpace, directory, "writing the snapshot failed: \(reason)")
            }
            throw AbathurError(error.kind, directory, "writing the snapshot failed: \(error.description)")
        }
        // No fsync: the snapshot is only ever read back by this run; the .gz is what must last.
        return (file.path, copied)
    }

    /// Copies the live database without writing to or creating any of its files
    /// (`LiveReader` says how).
    func copy(source path: String, to destination: Connection) throws -> String {
        try LiveReader.read(path, busyTimeoutMs: request.busyTimeoutMs, tempDirectory: request.backupDir) { source in
            try copy(from: source, to: destination)
        }
    }

    /// The copy, `request.snapshotStep` pages at a time, inside one read transaction on the
    /// source (`BEGIN` plus a read before the first step, `COMMIT` after the last): a stepped
    /// copy sees one snapshot too, and never restarts when the service writes (FACTS.md 2).
    /// Returns how it went: the pages and the steps.
    func copy(from source: Connection, to destination: Connection) throws -> String {
        try source.execute("BEGIN")
        defer { try? source.execute("COMMIT") }
        _ = try source.integer("SELECT count(*) FROM sqlite_schema")
        let backup = try OnlineBackup(from: source, to: destination)
        let pages = request.snapshotStep.pagesPerCall
        let steps = try stepToTheEnd(backup, pages: pages)
        let how = pages < 0 ? "all at once" : "\(pages) page(s) a step"
        return "\(backup.pageCount) page(s) copied in \(steps) step(s), \(how), in one read transaction"
    }

    /// Steps `backup` to its end, `pages` at a time, with a progress event after each step
    /// but the last; a busy step is tried again until the busy timeout. Returns the steps.
    func stepToTheEnd(_ backup: OnlineBackup, pages: Int32) throws -> Int {
        let deadline = Clock.monotonicSeconds() + Double(max(request.busyTimeoutMs, 1000)) / 1000
        var steps = 0
        while true {
            do {
                if try backup.step(pages: pages) { return steps + 1 }
                steps += 1
                events.progress("snapshot", done: Int64(backup.pageCount - backup.remaining), total: Int64(backup.pageCount))
            } catch {
                guard error.kind == .busy, Clock.monotonicSeconds() < deadline else { throw error }
                Clock.sleep(seconds: 0.05)
            }
        }
    }

    /// What stops the compression when the checks running beside it fail; never reported
    /// itself, since the checks' own failure is.
    static let checksFailed = AbathurError(.internal, nil, "stopped: the checks failed")

    func compress(_ snapshot: String, into gzTemp: String, cancellation: Cancellation) throws -> GzipDigest {
        let output = try FileDescriptor.createExclusive(gzTemp)
        temps.append(gzTemp)
        let input = try FileDescriptor.openForReading(snapshot)
        let total = try input.status().size
        let digest = try GzipFile.compress(from: input, to: output, level: request.compressionLevel, cancellation: cancellation) { done in
            self.events.progress("compress", done: done, total: total)
        }
        try output.sync()
        try output.close()
        return digest
    }

    /// `--stdout`: the verified `.gz` to stdout. Any write error (a stdout that was closed, a
    /// full one, a reader that went away) fails the run with exit 8; the temp file goes.
    func stream(_ gzTemp: String) throws {
        let stdout = FileDescriptor.standardOutput
        let input = try FileDescriptor.openForReading(gzTemp)
        try input.forEachChunk { chunk in
            do {
                try stdout.write(chunk)
            } catch {
                var failure = AbathurError.stdout(error)
                failure.message = "cannot write the backup: " + failure.message
                throw failure
            }
        }
    }
}
