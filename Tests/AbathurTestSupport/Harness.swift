import Foundation
import XCTest

/// The outcome of running one of the built binaries.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutData: Data

    var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
}

/// Bytes one reader thread fills while the test thread waits on a DispatchGroup.
final class Collected: @unchecked Sendable {
    var data = Data()
}

/// The repository this file is in (Tests/AbathurTestSupport/ is two levels down).
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}

/// Finds the built binaries: `ABATHUR_TEST_BIN` (set by `make check`), else the test build.
enum Binaries {
    static let directory: String = {
        if let dir = ProcessInfo.processInfo.environment["ABATHUR_TEST_BIN"] { return dir }
        return Repository.path(".build-test/release")
    }()

    static var multiCall: String { directory + "/abathur-tools" }
    static var demo: String { directory + "/abathur-demo" }

    /// Every tool, as the binary lists them (`abathur-tools --list-tools`, the one list).
    static let tools: [String] = {
        let run = try! Sandbox.execute(multiCall, ["--list-tools"])
        precondition(run.status == 0 && run.stderr.isEmpty, "abathur-tools --list-tools: \(run.stderr)")
        return run.stdout.split(separator: "\n").map(String.init)
    }()

    /// A directory with one link per tool name, as the package installs them, beside the
    /// binaries. Test processes running in parallel each put every link in place with a
    /// rename (atomic), so none ever sees a link missing.
    static let toolDirectory: String = {
        let dir = directory + "/tool-links"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for tool in tools {
            let temp = dir + "/.\(tool)-\(getpid())"
            try? FileManager.default.removeItem(atPath: temp)
            try! FileManager.default.createSymbolicLink(atPath: temp, withDestinationPath: multiCall)
            precondition(rename(temp, dir + "/" + tool) == 0, "cannot link \(tool) in \(dir)")
        }
        return dir
    }()

    static func tool(_ name: String) -> String { toolDirectory + "/" + name }
}

/// A scratch world for one test: a live directory with the database, a backup directory, an
/// empty config file (so the machine's /etc/abathur/abathur.conf never leaks in), and helpers
/// to run the tools and to fingerprint files byte for byte.
final class Sandbox {
    let root: String
    var liveDir: String { root + "/live" }
    var db: String { liveDir + "/abathur.db" }
    var backups: String { root + "/backups" }
    var config: String { root + "/abathur.conf" }

    init(_ name: String = #function) throws {
        let base = ProcessInfo.processInfo.environment["ABATHUR_TEST_TMP"] ?? NSTemporaryDirectory()
        let clean = name.filter { $0.isLetter || $0.isNumber }
        root = base + "/abathur-test-\(clean)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: liveDir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: config, contents: Data())
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Runs `tool` with `args`, with a clean environment plus `env`.
    @discardableResult
    func run(_ tool: String, _ args: [String], env: [String: String] = [:], stdin: Data? = nil,
             timeout: TimeInterval = 300) throws -> Run {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ABATHUR_") && $0.key != "JOURNAL_STREAM" }
        environment["ABATHUR_CONFIG"] = config
        for (k, v) in env { environment[k] = v }
        return try Sandbox.execute(tool.contains("/") ? tool : Binaries.tool(tool), args, environment: environment, stdin: stdin, timeout: timeout)
    }

    /// `abathur-backup` against this sandbox's database and backup directory.
    @discardableResult
    func backup(_ args: [String] = [], env: [String: String] = [:]) throws -> Run {
        try run("abathur-backup", args + ["--db", db, "--backup-dir", backups], env: env)
    }

    static func execute(_ path: String, _ args: [String], environment: [String: String]? = nil, stdin: Data? = nil,
                        timeout: TimeInterval = 300) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try? input.fileHandleForWriting.close()
        }
        // Read both pipes while the process runs, so a large output cannot block it.
        let outData = Collected(), errData = Collected()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            throw NSError(domain: "Sandbox", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(path) timed out"])
        }
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: outData.data, as: UTF8.self),
                   stderr: String(decoding: errData.data, as: UTF8.self), stdoutData: outData.data)
    }

    /// Runs a shell command line (test plumbing only: gunzip, sqlite3, sha256sum).
    @discardableResult
    static func shell(_ command: String) throws -> Run {
        try execute("/bin/sh", ["-c", command])
    }

    /// An abathur-shaped demo database in WAL mode at `db` (or `path`).
    func makeDemoDatabase(rows: Int = 500, at path: String? = nil) throws {
        let result = try Sandbox.execute(Binaries.demo, ["create", path ?? db, "--rows", "\(rows)"])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// Starts the demo writer against the database; returns the process.
    func startWriter(seconds: Double, rate: Double = 0) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.demo)
        process.arguments = ["write", db, "--seconds", "\(seconds)", "--rate", "\(rate)"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    func demo(_ args: [String]) throws -> Run {
        try Sandbox.execute(Binaries.demo, args)
    }

    /// Name → SHA-256 (or link target) for every entry in `dir`: "byte-identical" made checkable.
    func fingerprint(_ dir: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir) else { return [:] }
        for name in try fm.contentsOfDirectory(atPath: dir) {
            let path = dir + "/" + name
            let attributes = try fm.attributesOfItem(atPath: path)
            if attributes[.type] as? FileAttributeType == .typeSymbolicLink {
                result[name] = "link->" + (try fm.destinationOfSymbolicLink(atPath: path))
            } else if attributes[.type] as? FileAttributeType == .typeDirectory {
                result[name] = "dir"
            } else {
                result[name] = try sha256(path)
            }
        }
        return result
    }

    func sha256(_ path: String) throws -> String {
        let run = try Sandbox.execute("/usr/bin/sha256sum", [path])
        return String(run.stdout.prefix(64))
    }

    /// The `.db.gz` backups in the backup directory, oldest first.
    func backupFiles() throws -> [String] {
        guard FileManager.default.fileExists(atPath: backups) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: backups).filter { $0.hasSuffix(".db.gz") }.sorted()
    }

    /// The manifest of a backup, parsed.
    func manifest(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: backups + "/" + name + ".json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// One value from the sqlite3 CLI (read-only).
    func query(_ path: String, _ sql: String) throws -> String {
        let run = try Sandbox.execute("/usr/bin/sqlite3", ["-readonly", path, sql])
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Inflates a backup with plain `gunzip -c`, as an operator without our tools would.
    func gunzip(_ name: String, to path: String) throws -> Run {
        try Sandbox.shell("gunzip -c '\(backups)/\(name)' > '\(path)'")
    }
}
