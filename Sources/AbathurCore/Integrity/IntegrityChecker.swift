/// The checks of `abathur-integrity` (SPEC.md): each one a finding with a severity and its
/// evidence, run on the live database without disturbing it, on a database file, or on a
/// backup.
public struct IntegrityChecker {
    let options: IntegrityOptions
    let judge: IntegrityJudge

    public init(options: IntegrityOptions) {
        self.options = options
        judge = IntegrityJudge(options: options)
    }

    /// Checks a database file in place (`kind` .live or .file). Nothing is created or written
    /// next to it (`LiveReader`); a missing path is a finding, never a new empty database.
    /// `reference` is the newest backup's manifest, for the row-count comparison.
    public func checkDatabase(_ path: String, kind: TargetReport.Kind, reference: Manifest?) throws -> TargetReport {
        var report = TargetReport(path: path, kind: kind)
        guard try FileStatus.of(path) != nil else {
            report.add("file", .critical, "no such file (not created)", exitCode: .ioError)
            return report
        }
        // A symlink to the database is fine; stat what it points at.
        let inspection: DatabaseInspection
        do {
            inspection = try DatabaseInspection.header(of: path, followSymlinks: true)
        } catch let error as AbathurError where error.kind == .notADatabase || error.exitCode == .refused {
            let unreadable = error.kind != .notADatabase
            report.add(unreadable ? "file" : "header", .critical, error.message, exitCode: unreadable ? error.exitCode : nil)
            return report
        }
        judge.judgeHeader(inspection, into: &report)
        if report.severity == .critical { return report }
        if inspection.header.isWAL { try checkWAL(DatabaseFiles(path).wal, pageSize: inspection.header.pageSize, into: &report) }
        let structural = options.quick ? "quick_check" : "integrity_check"
        do {
            let contents = try LiveReader.read(path, busyTimeoutMs: options.busyTimeoutMs, tempDirectory: options.tempDirectory) { db in
                DatabaseInspection.Contents.read(db, options: options.inspection, parallel: DatabaseInspection.ParallelCheck(like: db, mmap: false))
            }
            judge.judgeContents(contents, standard: .inPlace(reference: reference), into: &report)
        } catch let error as SQLiteError {
            report.add(structural, .critical, error.description)
        } catch let error as AbathurError where error.kind == .corrupt || error.kind == .notADatabase {
            report.add(structural, .critical, error.message)
        }
        return report
    }

    static let noWAL = "no WAL: everything is in the main file"

    func checkWAL(_ path: String, pageSize: Int, into report: inout TargetReport) throws {
        guard try FileStatus.of(path) != nil else {
            report.add("wal", .ok, Self.noWAL)
            return
        }
        // The live database's WAL may be written while it is read: a finding of dropped
        // commits must hold over three reads (a file at rest confirms at once).
        let wal = try WALInspection.inspectConfirmed(path)
        var evidence = ["\(wal.fileSize) bytes", "\(wal.framesInFile) frames", "\(wal.validFrames) valid",
                        "\(wal.committedFrames) committed in \(wal.commits) transactions", "\(wal.pagesTouched) pages touched"]
        if let problem = wal.headerProblem {
            if wal.droppedCommits > 0 {
                report.add("wal", .critical,
                           "WAL ignored by SQLite (\(problem)), yet \(wal.droppedCommits) commit frame(s) in it carry its salts: committed transactions SQLite will silently drop; run abathur-walfix before opening it",
                           evidence: evidence)
            } else {
                report.add("wal", wal.fileSize == 0 ? .ok : .warning, "WAL ignored by SQLite: \(problem)", evidence: evidence)
            }
            return
        }
        if wal.pageSize != pageSize {
            report.add("wal", .warning, "WAL page size \(wal.pageSize) differs from the database's \(pageSize): SQLite ignores it", evidence: evidence)
            return
        }
        if let invalid = wal.firstInvalidFrame {
            evidence.append("first invalid frame \(invalid): \(wal.invalidReason ?? "?")")
        }
        if wal.droppedCommits > 0 {
            report.add("wal", .critical,
                       "\(wal.droppedCommits) committed transaction(s) after invalid frame \(wal.firstInvalidFrame ?? 0) (\(wal.invalidReason ?? "")) would be silently dropped by SQLite; run abathur-walfix before opening it",
                       evidence: evidence)
        } else if wal.committedFrames > 0 {
            report.add("wal", .ok, "\(wal.committedFrames) committed frame(s) not yet checkpointed", evidence: evidence)
        } else {
            report.add("wal", .ok, "WAL holds no committed frames", evidence: evidence)
        }
    }

    /// Checks a `.db.gz` with the one check of a backup file (`BackupFileCheck`: the file, its
    /// manifest, the space in `temp_dir`, the inflation, the hashes, the inflated database),
    /// and reports it finding by finding: `file`, `gzip`, `manifest`, then the inflated
    /// copy's findings judged as a backup against its manifest. `requireManifest`: a backup of
    /// the catalog, incomplete without one.
    public func checkGzip(_ path: String, manifest: Manifest?, manifestProblem: String? = nil, requireManifest: Bool) throws -> TargetReport {
        var report = TargetReport(path: path, kind: .backup)
        var database = DatabaseCheck.Options(quick: options.quick, expectation: options.expectation)
        database.maxErrors = options.maxErrors
        database.busyTimeoutMs = options.busyTimeoutMs
        let check = try BackupFileCheck.run(path, manifest: manifest, manifestProblem: manifestProblem, requireManifest: requireManifest,
                                            options: BackupFileCheck.Options(tempDirectory: options.tempDirectory, database: database,
                                                                             tag: "integrity.db"))
        if let problem = check.fileProblem {
            report.add("file", .critical, problem.message, exitCode: problem.exitCode)
            return report
        }
        if let problem = check.gzipProblem {
            report.add("gzip", .critical, problem)
        } else if let digest = check.digest {
            report.add("gzip", .ok, "CRC-32 and length ok, \(digest.rawBytes) bytes inflated")
        }
        if !check.manifestProblems.isEmpty {
            report.add("manifest", .critical, check.manifestProblems.joined(separator: "; "))
        } else if let note = check.manifestNote ?? check.unverifiedWhenTaken {
            report.add("manifest", .warning, note)
        } else if check.digest != nil {
            report.add("manifest", .ok, "sha256 of the .gz and of the database match the manifest")
        }
        if let problem = check.databaseProblem, check.inspection == nil {
            report.add("header", .critical, problem + " (inflated copy)")
        }
        if let inspection = check.inspection {
            judge.judgeHeader(inspection, into: &report)
            if inspection.header.isWAL { report.add("wal", .ok, Self.noWAL) }
            switch inspection.contents {
            case nil:
                break
            case .failure(let error)?:
                report.add(options.quick ? "quick_check" : "integrity_check", .critical, error.description)
            case .success(let contents)?:
                judge.judgeContents(contents, standard: manifest.map(IntegrityJudge.Standard.backup) ?? .inPlace(reference: nil), into: &report)
            }
        }
        return report
    }
}

extension IntegrityOptions {
    var inspection: DatabaseInspection.Options {
        DatabaseInspection.Options(quick: quick, maxErrors: maxErrors)
    }
}
