import Foundation
import XCTest
@testable import AbathurTestSupport

/// Retention (SPEC.md, "Defaults" and "Safety rules"): scheduled backups are kept for
/// `retention_days` (30), never fewer than the `keep_min_verified` (2) newest verified ones,
/// manual backups are never pruned, and only regular files with our names and a valid
/// manifest are ever removed.
final class RetentionTests: XCTestCase {
    /// 2024-01-01 02:00:00 UTC: the nightly timer's hour.
    let base = 1_704_074_400
    let day = 86_400

    // MARK: - helpers

    /// The scheduled name a backup taken at `time` carries: `abathur_YYYY-MM-DD_HH-MM-SS.db.gz` (UTC).
    func scheduledName(_ time: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd_HH-mm-ss"
        return "abathur_" + formatter.string(from: Date(timeIntervalSince1970: TimeInterval(time))) + ".db.gz"
    }

    func prune(_ box: Sandbox, at time: Int, dryRun: Bool = false) throws -> Run {
        try box.backup(["prune"] + (dryRun ? ["--dry-run"] : []), env: ["ABATHUR_NOW": "\(time)"])
    }

    func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Each kept backup has its `.gz` and manifest; each removed one has neither.
    func assertBackups(_ box: Sandbox, kept: [String], removed: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try box.backupFiles(), kept.sorted(), file: file, line: line)
        for name in kept {
            XCTAssertTrue(exists(box.backups + "/" + name), "\(name) kept", file: file, line: line)
            XCTAssertTrue(exists(box.backups + "/" + name + ".json"), "\(name) keeps its manifest", file: file, line: line)
        }
        for name in removed {
            XCTAssertFalse(exists(box.backups + "/" + name), "\(name) removed", file: file, line: line)
            XCTAssertFalse(exists(box.backups + "/" + name + ".json"), "\(name)'s manifest removed with it", file: file, line: line)
        }
    }

    /// SHA256SUMS names exactly `names` and `sha256sum -c` passes in the backup directory.
    func assertSums(_ box: Sandbox, list names: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let text = try String(contentsOfFile: box.backups + "/SHA256SUMS", encoding: .utf8)
        var listed: [String] = []
        for row in text.split(separator: "\n") {
            let parts = row.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            XCTAssertEqual(parts.count, 2, "sha256sum format: \(row)", file: file, line: line)
            guard parts.count == 2 else { continue }
            XCTAssertEqual(parts[0].count, 64, "sha256sum format: \(row)", file: file, line: line)
            listed.append(String(parts[1].drop { $0 == " " || $0 == "*" }))
        }
        XCTAssertEqual(listed.sorted(), names.sorted(), "SHA256SUMS lists exactly the remaining backups", file: file, line: line)
        let check = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr, file: file, line: line)
    }

    /// The `prune` line for `name`: `keep   NAME  # rule` or `remove NAME  # rule`.
    func decision(_ run: Run, _ name: String) -> String? {
        let lines = run.stdout.split(separator: "\n").map(String.init)
        if lines.contains(where: { $0.hasPrefix("keep   \(name)  # ") }) { return "keep" }
        if lines.contains(where: { $0.hasPrefix("remove \(name)  # ") }) { return "remove" }
        return nil
    }

    /// Every entry of the backup directory with its bytes, compared byte for byte (read
    /// in-process: forty backups would otherwise mean a hundred `sha256sum` runs).
    func contents(_ box: Sandbox) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: box.backups) {
            result[name] = try Data(contentsOf: URL(fileURLWithPath: box.backups + "/" + name))
        }
        return result
    }

    func flipByte(_ path: String, at fraction: Double = 0.5) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let index = Int(Double(data.count) * fraction)
        data[index] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: path))
    }

    // MARK: - tests

    /// 1. Forty nightly backups: after the last one only the newest 30 days remain, and
    /// SHA256SUMS follows.
    func testFortyNightlyBackupsKeepTheNewestThirtyDays() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 150)
        // A nightly timer drifts a little (a minute a day here), so no backup sits exactly on
        // the 30-day boundary: the one taken 30 days and 30 minutes before the last is out.
        let times = (0..<40).map { base + $0 * day + $0 * 60 }
        var names: [String] = []
        for time in times {
            let name = try box.takeBackup(at: time)
            XCTAssertEqual(name, scheduledName(time))
            names.append(name)
        }
        let kept = Array(names[10...])
        let removed = Array(names[..<10])
        XCTAssertEqual(kept.count, 30)
        try assertBackups(box, kept: kept, removed: removed)
        try assertSums(box, list: kept)

        // A prune right after changes nothing: retention already ran after the backup.
        let before = try contents(box)
        let again = try prune(box, at: times.last!)
        XCTAssertEqual(again.status, 0, again.stderr)
        for name in kept { XCTAssertEqual(decision(again, name), "keep", again.stdout) }
        XCTAssertEqual(try contents(box), before)
    }

    /// 2. Everything is old: the 2 newest verified backups stay, the rest go; a dry run first
    /// shows the same decisions and changes nothing.
    func testAllOldKeepsTheTwoNewestVerifiedAndDryRunChangesNothing() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 120)
        var names: [String] = []
        for d in 0..<5 { names.append(try box.takeBackup(at: base + d * day)) }
        XCTAssertEqual(try box.backupFiles(), names.sorted(), "nothing is old yet when they are taken")
        let later = base + 400 * day

        let before = try contents(box)
        let dry = try prune(box, at: later, dryRun: true)
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(try contents(box), before, "--dry-run removes and rewrites nothing")
        XCTAssertEqual(dry.stdout.split(separator: "\n").count, 5, "one line per backup:\n\(dry.stdout)")
        for name in names[3...] { XCTAssertEqual(decision(dry, name), "keep", dry.stdout) }
        for name in names[..<3] { XCTAssertEqual(decision(dry, name), "remove", dry.stdout) }

        let real = try prune(box, at: later)
        XCTAssertEqual(real.status, 0, real.stderr)
        for name in names[3...] { XCTAssertEqual(decision(real, name), "keep", real.stdout) }
        for name in names[..<3] { XCTAssertEqual(decision(real, name), "remove", real.stdout) }
        try assertBackups(box, kept: Array(names[3...]), removed: Array(names[..<3]))
        try assertSums(box, list: Array(names[3...]))

        // The floor holds on a second run too: nothing more goes.
        let again = try prune(box, at: later + 100 * day)
        XCTAssertEqual(again.status, 0, again.stderr)
        try assertBackups(box, kept: Array(names[3...]), removed: [])
    }

    /// 3. Manual and labelled backups are never pruned automatically, however old.
    func testManualBackupsSurviveRetention() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        let manual = try box.takeBackup(at: base, ["--manual"])
        let labelled = try box.takeBackup(at: base + 60, ["--label", "pre-migration"])
        XCTAssertTrue(manual.hasPrefix("manual_"), manual)
        XCTAssertTrue(labelled.hasPrefix("pre-migration_"), labelled)
        var scheduled: [String] = []
        for d in 1...4 { scheduled.append(try box.takeBackup(at: base + d * day)) }
        let taken = try box.fingerprint(box.backups)
        let manualManifests = [manual, labelled].map { taken[$0 + ".json"] }
        let manualData = [manual, labelled].map { taken[$0] }
        XCTAssertFalse(manualManifests.contains(nil) || manualData.contains(nil), "\(taken.keys.sorted())")

        // An explicit prune, years later.
        let far = base + 3 * 365 * day
        let run = try prune(box, at: far)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(decision(run, manual), "keep", run.stdout)
        XCTAssertEqual(decision(run, labelled), "keep", run.stdout)
        XCTAssertTrue(try box.backupFiles().contains(manual))
        XCTAssertTrue(try box.backupFiles().contains(labelled))
        // Scheduled ones did get pruned, so retention really ran.
        XCTAssertFalse(try box.backupFiles().contains(scheduled[0]))

        // Retention after a new scheduled backup, years later still.
        _ = try box.takeBackup(at: far + 10 * day)
        let files = try box.backupFiles()
        XCTAssertTrue(files.contains(manual), "\(files)")
        XCTAssertTrue(files.contains(labelled), "\(files)")
        let fingerprint = try box.fingerprint(box.backups)
        XCTAssertEqual([manual, labelled].map { fingerprint[$0 + ".json"] }, manualManifests, "manifests intact")
        XCTAssertEqual([manual, labelled].map { fingerprint[$0] }, manualData, "backups intact")
        try assertSums(box, list: files)
    }

    /// 4. A backup whose `.gz` no longer hashes to its manifest never holds a floor slot: the
    /// 2 newest *good* backups stay.
    func testCorruptBackupNeverCountsAsVerified() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 150)
        var names: [String] = []
        for d in 0..<4 { names.append(try box.takeBackup(at: base + d * day)) }
        // Same size, one byte different: only the hash can tell.
        let newest = box.backups + "/" + names[3]
        let size = try FileManager.default.attributesOfItem(atPath: newest)[.size] as? Int
        try flipByte(newest)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: newest)[.size] as? Int, size)
        let good = try [names[1], names[2]].map { try box.sha256(box.backups + "/" + $0) }

        let run = try prune(box, at: base + 400 * day)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(decision(run, names[2]), "keep", run.stdout)
        XCTAssertEqual(decision(run, names[1]), "keep", run.stdout)
        XCTAssertEqual(decision(run, names[0]), "remove", run.stdout)
        XCTAssertNotEqual(decision(run, names[3]), "keep", "the corrupt backup must not take a floor slot:\n\(run.stdout)")

        let files = try box.backupFiles()
        XCTAssertTrue(files.contains(names[1]) && files.contains(names[2]), "the two newest good backups stay: \(files)")
        XCTAssertEqual(try [names[1], names[2]].map { try box.sha256(box.backups + "/" + $0) }, good)
        XCTAssertFalse(files.contains(names[0]), "older than 30 days and not in the floor: \(files)")
        // The corrupt one is a scheduled backup with a valid manifest, 30+ days old.
        try assertBackups(box, kept: [names[1], names[2]], removed: [names[0], names[3]])
        try assertSums(box, list: [names[1], names[2]])
    }

    /// 5. Prune never touches what is not ours: a foreign file, a `.db.gz` with our name but
    /// no manifest, and a symlink under a backup name (with a manifest that would match the
    /// file it points to) pointing outside the directory.
    func testPruneNeverTouchesWhatIsNotOurs() throws {
        let box = try Sandbox()
        try box.makeDemoDatabase(rows: 100)
        var names: [String] = []
        for d in 0..<3 { names.append(try box.takeBackup(at: base + d * day)) }
        let fm = FileManager.default

        // A foreign file.
        let notes = box.backups + "/notes.txt"
        try Data("operator notes\n".utf8).write(to: URL(fileURLWithPath: notes))

        // Our name pattern, a real gzip, but no manifest: an incomplete backup, not ours to delete.
        let orphan = scheduledName(base - 10 * day)
        try fm.copyItem(atPath: box.backups + "/" + names[0], toPath: box.backups + "/" + orphan)

        // A symlink under a backup name, pointing at a copy of a real backup outside the
        // directory, with a manifest naming it: followed, it would look like a valid old backup.
        let outsideDir = box.root + "/outside"
        try fm.createDirectory(atPath: outsideDir, withIntermediateDirectories: true)
        let target = outsideDir + "/precious.db.gz"
        try fm.copyItem(atPath: box.backups + "/" + names[0], toPath: target)
        let linkName = scheduledName(base - 20 * day)
        try fm.createSymbolicLink(atPath: box.backups + "/" + linkName, withDestinationPath: target)
        var manifest = try box.manifest(names[0])
        manifest["name"] = linkName
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: box.backups + "/" + linkName + ".json"))

        let planted = try box.fingerprint(box.backups).filter { [ "notes.txt", orphan, linkName ].contains($0.key) }
        XCTAssertEqual(planted.count, 3)
        XCTAssertEqual(planted[linkName], "link->" + target)
        let outside = try box.fingerprint(outsideDir)

        func assertUntouched(_ step: String) throws {
            let now = try box.fingerprint(box.backups)
            for (name, print) in planted { XCTAssertEqual(now[name], print, "\(step): \(name) still there and unchanged") }
            XCTAssertEqual(try box.fingerprint(outsideDir), outside, "\(step): the symlink's target is intact")
            XCTAssertTrue(try fm.attributesOfItem(atPath: box.backups + "/" + linkName)[.type] as? FileAttributeType == .typeSymbolicLink)
        }

        let far = base + 400 * day
        let run = try prune(box, at: far)
        XCTAssertEqual(run.status, 0, run.stderr)
        try assertUntouched("prune")
        XCTAssertNotEqual(decision(run, orphan), "remove", run.stdout)
        XCTAssertNotEqual(decision(run, linkName), "remove", run.stdout)
        // Prune did run: the oldest real backup went, the floor stayed.
        XCTAssertFalse(exists(box.backups + "/" + names[0]))
        XCTAssertTrue(exists(box.backups + "/" + names[1]) && exists(box.backups + "/" + names[2]))

        // And retention after a new backup, later still.
        _ = try box.takeBackup(at: far + day)
        try assertUntouched("retention after a backup")
        let sums = try Sandbox.shell("cd '\(box.backups)' && sha256sum -c SHA256SUMS")
        XCTAssertEqual(sums.status, 0, sums.stdout + sums.stderr)
        XCTAssertFalse(sums.stdout.contains(linkName), "SHA256SUMS lists only real backups:\n\(sums.stdout)")
        XCTAssertFalse(sums.stdout.contains(orphan), "SHA256SUMS lists only complete backups:\n\(sums.stdout)")
    }
}
