/// Where a restore's bytes come from, once chosen: a backup with its manifest, a file, or stdin.
public struct ChosenSource: Sendable, Encodable {
    /// The backup's file name, the path, or "-".
    public var name: String
    /// nil for stdin.
    public var path: String?
    public var manifest: Manifest?

    /// The "locate" step of a restore or a drill.
    static func locate(_ request: RestoreRequest, on timeline: Timeline) throws -> ChosenSource {
        try timeline.step("locate") {
            let source = try choose(request.source, backupDir: request.backupDir, force: request.force)
            return (source, "\(source.path ?? "stdin")" + (source.manifest.map { ", created \($0.created)" } ?? ""))
        }
    }

    /// Picks the backup `source` names from `catalog` (complete, verified backups only).
    public static func choose(_ source: RestoreRequest.Source, backupDir: String, force: Bool) throws -> ChosenSource {
        switch source {
        case .standardInput:
            return ChosenSource(name: "-", path: nil, manifest: nil)
        case .path(let path):
            guard let status = try FileStatus.of(path) else { throw AbathurError(.notFound, path, "no such file") }
            if !force {
                if status.isSymlink { throw AbathurError(.unsafePath, path, "is a symlink; refusing to follow it (use --force to accept it)") }
                if !status.isRegular { throw AbathurError(.unsafePath, path, "not a regular file (use --force to read it anyway)") }
            }
            let manifestPath = path + BackupName.manifestSuffix
            let manifest = try FileStatus.of(manifestPath)?.isRegular == true ? try Manifest.read(manifestPath) : nil
            return ChosenSource(name: path, path: path, manifest: manifest)
        case .newest, .named, .before:
            guard try FileStatus.of(backupDir) != nil else { throw AbathurError(.noBackup, backupDir, "no backup directory, so no backup to restore") }
            let catalog = try Catalog.scan(backupDir)
            let entry: Catalog.Entry
            switch source {
            case .named(let name):
                guard let found = catalog.entry(named: name) else {
                    throw AbathurError(.usage, Paths.join(backupDir, Paths.basename(name)), "no such backup (see abathur-restore --list)")
                }
                guard found.isComplete else {
                    if found.lacksManifest {
                        throw AbathurError(.incompleteBackup, found.path, "incomplete backup: it has no manifest (a backup was interrupted while publishing it), so nothing proves it whole; restore a complete one (see abathur-restore --list), or give its path to restore it as a file without a manifest")
                    }
                    let unverified = found.manifest.map { m in m.walLoss.map { "not verified: \($0.detail); the snapshot lacks them" } ?? (m.verified ? nil : "its manifest says it is not verified") } ?? nil
                    let resized = found.manifest.flatMap { m in found.status.flatMap { $0.isRegular && $0.size != m.gz.bytes ? "size \($0.size) bytes, the manifest says \(m.gz.bytes)" : nil } }
                    let why = unverified ?? resized ?? found.status.map { $0.isRegular ? (found.manifestProblem ?? "no manifest") : "not a regular file" } ?? "the .db.gz is missing"
                    throw AbathurError(.incompleteBackup, found.path, "not a complete, verified backup: \(why)")
                }
                entry = found
            case .before(let time):
                guard let found = catalog.complete.first(where: { $0.manifest!.createdUnix < time }) else {
                    throw AbathurError(.noBackup, backupDir, "no verified backup created before \(Clock.iso8601(time))")
                }
                entry = found
            default:
                guard let found = catalog.complete.first else { throw AbathurError(.noBackup, backupDir, "no verified backup to restore") }
                entry = found
            }
            return ChosenSource(name: entry.fileName, path: entry.path, manifest: entry.manifest)
        }
    }
}

/// A database file ready to take the live database's place: written beside it (same
/// filesystem, so the swap is one rename), fsynced, hashed as it was written.
public struct Candidate: Sendable {
    public var path: String
    public var sha256: String
    public var bytes: Int64
    /// The `.gz` stream's SHA-256 and size, when the source was gzip.
    public var gzSHA256: String?
    public var gzBytes: Int64?
    /// How a raw source's `-wal` or `-journal` was folded in, if it had one.
    public var note: String?

    /// Reads `source` (a `.db.gz` or a raw `.db`, told apart by content) into a new temp file
    /// in `directory`, in bounded memory, and compares it with the manifest when there is one.
    /// Any decompressor error or hash mismatch is exit 3; the temp file is removed on error.
    /// `verbatim` copies the bytes whatever they are (a rollback puts back what was there,
    /// even a file that is not a database). Writing stops before it passes `limit`. `sync`:
    /// fsync the file before returning; a caller that passes false must fsync it
    /// (`SafeFiles.syncFile`) before anything depends on it being on disk.
    public static func write(from source: ChosenSource, into directory: String, force: Bool, verbatim: Bool = false,
                             sync: Bool = true, limit: InflationLimit? = nil, progress: ((Int64) -> Void)? = nil) throws -> Candidate {
        let input: FileDescriptor
        if let path = source.path, !verbatim {
            // A database file that a process holds locked is being written: a copy of it is not
            // a snapshot (FACTS.md 1).
            if let holder = try Holders.posixLocks(path).first(where: { $0.path == path }) {
                throw AbathurError(.busy, path, "in use: \(holder); a database being written cannot be copied consistently (stop it, or restore from a backup)")
            }
        }
        if let path = source.path {
            input = try FileDescriptor.openForReading(path, followSymlinks: force, anyType: force)
        } else {
            input = FileDescriptor.standardInput
        }
        let output = try SafeFiles.createTemp(in: directory, tag: "restore.db")
        do {
            var candidate = try copy(input, to: output, verbatim: verbatim, limit: limit, progress: progress)
            candidate.path = output.path
            if sync { try output.sync() }
            try output.close()
            if let manifest = source.manifest { try candidate.compare(with: manifest, source: source.path ?? "-") }
            if candidate.gzSHA256 == nil, let path = source.path { try candidate.foldCompanions(of: path, verbatim: verbatim) }
            return candidate
        } catch {
            for file in DatabaseFiles(output.path).all { SafeFiles.removeQuietly(file) }
            // A write into the temp file that ran out of space is told about the directory.
            if let error = error as? AbathurError, error.kind == .noSpace, error.path?.hasPrefix(output.path) == true {
                throw AbathurError(.noSpace, directory, "writing the candidate failed: \(error.message)")
            }
            throw error
        }
    }

    /// A raw database file may have a `-wal` (or a hot `-journal`) beside it, like the files of
    /// a safety copy: its committed transactions belong to it. They are copied beside the
    /// candidate and folded in with SQLite, so the candidate is the database SQLite would see.
    /// SQLite's recovery silently drops the commits behind a broken WAL frame (FACTS.md 10):
    /// such a source is refused (exit 4) unless `verbatim` (a rollback puts back what was
    /// there; its raw files stay in the safety copy).
    mutating func foldCompanions(of source: String, verbatim: Bool) throws {
        let (from, to) = (DatabaseFiles(source), DatabaseFiles(path))
        let present = try DatabaseFiles.File.transactions.filter { try FileStatus.of(from.path($0))?.isRegular == true }
        guard !present.isEmpty else { return }
        if !verbatim, present.contains(.wal), let loss = try WALInspection.inspectConfirmed(from.wal).lossDescription {
            throw AbathurError(.walLoss, from.wal, "\(loss); a candidate made from it would lack them; run abathur-walfix on it first")
        }
        for file in present { try SafeFiles.copy(from.path(file), toNew: to.path(file)) }
        note = "with its \(present.map(\.suffix).joined(separator: " and ")): " + (try DatabaseSwap.settle(path, busyTimeoutMs: 5000))
        for companion in to.companions { try SafeFiles.remove(companion) }
        (sha256, bytes) = try GzipFile.sha256(of: path)
        try SafeFiles.syncFile(path)
    }

    /// Copies `input` to `output`: a gzip stream through the streaming inflation loop (`Inflation`),
    /// a raw database as it is, told apart by their first bytes (a pipe may deliver fewer than
    /// 16 at first: they are held until there are enough, or the input ends).
    static func copy(_ input: FileDescriptor, to output: FileDescriptor, verbatim: Bool, limit: InflationLimit?,
                     progress: ((Int64) -> Void)?) throws -> Candidate {
        // A gzip file is inflated on every core (`GzipFile.decompress`); a stream or a raw
        // database goes through the loop below.
        if !verbatim, try input.status().isRegular {
            var head = [UInt8](repeating: 0, count: 2)
            let count = try head.withUnsafeMutableBytes { try input.read(into: $0, at: 0) }
            if count == 2, head == GzipFile.magic {
                let digest = try GzipFile.decompress(from: input, to: output, limit: limit, progress: progress)
                return Candidate(path: output.path, sha256: digest.rawSHA256, bytes: digest.rawBytes,
                                 gzSHA256: digest.gzSHA256, gzBytes: digest.gzBytes, note: nil)
            }
        }
        var rawHash = SHA256()
        var rawBytes: Int64 = 0
        var inflation: Inflation?
        var sniffed: [UInt8] = []
        var decided = false
        func feed(_ chunk: UnsafeRawBufferPointer) throws {
            if let inflation {
                try inflation.feed(chunk)
            } else {
                try limit?.check(written: rawBytes, adding: chunk.count, source: input.path)
                rawHash.update(chunk)
                rawBytes += Int64(chunk.count)
                try output.write(chunk)
            }
        }
        func begin() throws {
            decided = true
            if !verbatim, try classify(sniffed, path: input.path) {
                inflation = try Inflation(source: input.path, to: output, limit: limit)
            }
            try sniffed.withUnsafeBytes { try feed($0) }
            sniffed = []
        }
        try input.forEachChunk { chunk in
            if decided {
                try feed(chunk)
            } else {
                sniffed += chunk
                if sniffed.count >= 16 { try begin() }
            }
            progress?(inflation?.gzBytes ?? rawBytes)
        }
        if !decided { try begin() }
        guard let inflation else {
            return Candidate(path: output.path, sha256: rawHash.finalizeHex(), bytes: rawBytes, gzSHA256: nil, gzBytes: nil, note: nil)
        }
        let digest = try inflation.finish()
        return Candidate(path: output.path, sha256: digest.rawSHA256, bytes: digest.rawBytes,
                         gzSHA256: digest.gzSHA256, gzBytes: digest.gzBytes, note: nil)
    }

    static func classify(_ head: [UInt8], path: String) throws -> Bool {
        // SPEC.md, "which input gets which code": empty or not SQLite is 4, as in every tool.
        if head.isEmpty { throw AbathurError(.corrupt, path, "empty input: neither a gzip stream nor an SQLite database") }
        if Array(head.prefix(2)) == GzipFile.magic { return true }
        if Array(head.prefix(16)) == DatabaseHeader.magic { return false }
        throw AbathurError(.notADatabase, path, "neither a gzip stream nor an SQLite database")
    }

    /// The bytes must be exactly what the manifest recorded (FACTS.md 6: a flipped bit can
    /// inflate to a database that passes integrity_check).
    func compare(with manifest: Manifest, source: String) throws {
        if let gzSHA256, gzSHA256 != manifest.gz.sha256 {
            throw AbathurError(.damagedBackup, source, "sha256 of the .gz is \(gzSHA256), the manifest says \(manifest.gz.sha256)")
        }
        guard sha256 == manifest.database.sha256, bytes == manifest.database.bytes else {
            throw AbathurError(.damagedBackup, source, "the database inflates to \(bytes) bytes with sha256 \(sha256), the manifest says \(manifest.database.bytes) bytes, \(manifest.database.sha256)")
        }
    }
}

extension Candidate {
    /// Bytes the candidate will take: the manifest's size, else the source file's estimated
    /// inflated size (`GzipFile.estimatedInflatedSize`) plus, for a raw database, twice its
    /// `-wal` and `-journal` (copied beside the candidate, then folded into it); 0 for stdin,
    /// whose size is known only once written (the inflation is held to the space budget as it
    /// runs).
    public static func estimatedSize(of source: ChosenSource) throws -> Int64 {
        if let manifest = source.manifest { return manifest.database.bytes }
        guard let path = source.path else { return 0 }
        let companions = try DatabaseFiles(path).size(of: DatabaseFiles.File.transactions)
        return try GzipFile.estimatedInflatedSize(of: path) + 2 * companions
    }
}
