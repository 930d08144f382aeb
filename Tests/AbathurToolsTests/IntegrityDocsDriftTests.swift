import Foundation
import XCTest

/// The hand-written docs of abathur-integrity (man/abathur-integrity.8,
/// completions/abathur-integrity) against what the built binary prints for `--help`, as
/// DocsDriftTests does for abathur-backup; the helpers are DocsDriftTests' own. The tool has
/// no subcommands: its options are the common ones and its own.
final class IntegrityDocsDriftTests: XCTestCase {
    static let tool = "abathur-integrity"
    static var manPage: String { DocsDriftTests.repoRoot.appendingPathComponent("man/abathur-integrity.8").path }
    static var completion: String { DocsDriftTests.repoRoot.appendingPathComponent("completions/abathur-integrity").path }
    /// The `.SS` of OPTIONS that holds the options only this tool has.
    static let ownOptions = "abathur-integrity options"

    /// `abathur-integrity --help`, checked to succeed quietly.
    func help(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try Sandbox.execute(Binaries.tool(Self.tool), ["--help"])
        XCTAssertEqual(run.status, 0, "\(Self.tool) --help: \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stderr, "", file: file, line: line)
        XCTAssertFalse(run.stdout.isEmpty, file: file, line: line)
        return run.stdout
    }

    /// The page's source with roff escapes for hyphens, fonts and joins removed (as
    /// DocsDriftTests.manText() does for abathur-backup's page).
    static func manText() throws -> String {
        var text = try String(contentsOfFile: manPage, encoding: .utf8)
        for (escape, plain) in [(#"\-"#, "-"), (#"\c"#, ""), (#"\&"#, ""), (#"\fB"#, ""), (#"\fI"#, ""), (#"\fR"#, ""), (#"\fP"#, "")] {
            text = text.replacingOccurrences(of: escape, with: plain)
        }
        return text
    }

    // MARK: (a) options in --help and in the man page

    func testEveryHelpOptionIsInTheManPageAndBack() throws {
        let page = try Self.manText()
        let text = try help()
        XCTAssertEqual(DocsDriftTests.listedSubcommands(text), [], "\(Self.tool) has no subcommands; this test and the page assume so")

        let options = DocsDriftTests.section("OPTIONS", in: page)
        XCTAssertFalse(options.isEmpty, "the man page has an OPTIONS section")
        let common = DocsDriftTests.longOptions(DocsDriftTests.tags(DocsDriftTests.section("OPTIONS", subsection: "Common options", in: page)).joined(separator: "\n"))
        XCTAssertFalse(common.isEmpty, "OPTIONS has a 'Common options' subsection")
        let ownLines = DocsDriftTests.section("OPTIONS", subsection: Self.ownOptions, in: page)
        let own = DocsDriftTests.longOptions(DocsDriftTests.tags(ownLines).joined(separator: "\n"))
        XCTAssertFalse(own.isEmpty, "OPTIONS has an '\(Self.ownOptions)' subsection")

        let listed = DocsDriftTests.helpOptions(text)
        XCTAssertFalse(listed.isEmpty, "--help lists options")
        let documented = common.union(own)
        XCTAssertTrue(listed.isSubset(of: documented),
                      "options of '\(Self.tool) --help' missing from the man page (common options or '\(Self.ownOptions)'): \(listed.subtracting(documented).sorted())")
        let inPage = DocsDriftTests.longOptions(options.joined(separator: "\n"))
        XCTAssertTrue(inPage.isSubset(of: listed),
                      "options in the man page's OPTIONS that '\(Self.tool) --help' does not list: \(inPage.subtracting(listed).sorted())")

        // The PATH argument is documented with the options, and the tool's own options are in
        // the SYNOPSIS.
        XCTAssertTrue(text.contains("<path>"), "--help shows the PATH argument")
        XCTAssertTrue(DocsDriftTests.tags(ownLines).contains(".I path"), "'\(Self.ownOptions)' documents the path argument")
        let synopsis = DocsDriftTests.longOptions(DocsDriftTests.section("SYNOPSIS", in: page).joined(separator: "\n"))
        let ownListed = listed.subtracting(common)
        XCTAssertTrue(ownListed.isSubset(of: synopsis), "own options missing from the SYNOPSIS: \(ownListed.subtracting(synopsis).sorted())")
    }

    // MARK: (b) man --warnings

    func testManPageFormatsWithoutWarnings() throws {
        try ManPage.assertFormatsWithoutWarnings(Self.manPage, naming: Self.tool)
    }

    // MARK: (c) bash completion

    func testCompletionLoads() throws {
        try Completion.assertLoads(tool: "abathur-integrity", file: Self.completion)
    }

    func complete(_ words: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        try Completion.complete(tool: "abathur-integrity", file: Self.completion, words, env: env, file: file, line: line)
    }

    func testCompletionOffersExactlyTheHelpOptions() throws {
        let listed = DocsDriftTests.helpOptions(try help())
        let completed = try complete([Self.tool, "--"])
        XCTAssertEqual(completed.count, Set(completed).count, "no option offered twice")
        XCTAssertEqual(Set(completed), listed,
                       "\(Self.tool) --<TAB> against '\(Self.tool) --help': "
                       + "not completed \(listed.subtracting(completed).sorted()), not in help \(Set(completed).subtracting(listed).sorted())")
        // The same behind options, their values and a path.
        for words in [[Self.tool, "--db", "/tmp/x.db", "--backup-dir", "/tmp", "--"],
                      [Self.tool, "--backup", "x", "--sample", "15", "--quick", "--"],
                      [Self.tool, "/tmp/x.db", "--"]] {
            XCTAssertEqual(Set(try complete(words)), listed, words.joined(separator: " "))
        }
        XCTAssertEqual(try complete([Self.tool, "--all"]), ["--all-backups"])
    }

    func testCompletionOffersPathsAndBackupNames() throws {
        let box = try Sandbox()
        let fm = FileManager.default
        try fm.createDirectory(atPath: box.backups + "/subdir", withIntermediateDirectories: true)
        let names = ["abathur_2026-01-02_03-04-05.db.gz", "manual_20260102_030405.db.gz", "pre-upgrade_20260103_000000.db.gz"]
        for name in names + ["abathur_2026-01-02_03-04-05.db.gz.json", "SHA256SUMS", "notes.txt", "copy.db"] {
            XCTAssertTrue(fm.createFile(atPath: box.backups + "/" + name, contents: Data()))
        }

        // --backup NAME: from --backup-dir on the line, else the environment.
        XCTAssertEqual(Set(try complete([Self.tool, "--backup-dir", box.backups, "--backup", ""])), Set(names))
        // `--opt=value`, which bash splits at the `=`.
        XCTAssertEqual(Set(try complete([Self.tool, "--backup-dir", "=", box.backups, "--backup", "=", ""])), Set(names))
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", box.backups, "--backup", "man"]), ["manual_20260102_030405.db.gz"])
        XCTAssertEqual(Set(try complete([Self.tool, "--backup", ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), Set(names))
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", box.root + "/live", "--backup", ""], env: ["ABATHUR_BACKUP_DIR": box.backups]), [],
                       "--backup-dir on the line wins over the environment")

        // Options that take a path.
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", box.backups + "/sub"]), [box.backups + "/subdir"])
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", box.backups + "/no"]), [], "--backup-dir offers directories only")
        for option in ["--db", "--config", "--prometheus"] {
            XCTAssertEqual(try complete([Self.tool, option, box.backups + "/no"]), [box.backups + "/notes.txt"], option)
        }

        // PATH: directories, .db and .db.gz files, and nothing else; only once.
        let paths = Set(try complete([Self.tool, box.backups + "/"]))
        XCTAssertEqual(paths, Set((names + ["copy.db", "subdir"]).map { box.backups + "/" + $0 }))
        XCTAssertEqual(Set(try complete([Self.tool, "--quick", "--db", box.db, box.backups + "/c"])), [box.backups + "/copy.db"])
        XCTAssertEqual(try complete([Self.tool, box.backups + "/copy.db", box.backups + "/"]), [], "one PATH only")
    }

    // MARK: (d) exit status

    func testManPageListsEveryExitCode() throws {
        let page = try Self.manText()
        func codes(_ lines: [String]) -> [String] {
            DocsDriftTests.tags(lines).map { $0.replacingOccurrences(of: ".B ", with: "").trimmingCharacters(in: .whitespaces) }
        }
        let section = DocsDriftTests.section("EXIT STATUS", in: page)
        let table = Array(section.prefix { !$0.hasPrefix(".SS") })
        XCTAssertEqual(codes(table), (0...9).map(String.init), "EXIT STATUS lists 0 to 9, once each, in order")
        // The shared table, word for word as in abathur-backup(8).
        let backupTable = DocsDriftTests.section("EXIT STATUS", in: try DocsDriftTests.manText())
        XCTAssertEqual(Array(table.drop { !$0.hasPrefix(".TP") }), Array(backupTable.drop { !$0.hasPrefix(".TP") }),
                       "the exit-code table matches abathur-backup(8)")
        let nagios = DocsDriftTests.section("EXIT STATUS", subsection: "With --nagios", in: page)
        XCTAssertEqual(codes(nagios), (0...3).map(String.init), "EXIT STATUS has a 'With --nagios' subsection listing 0 to 3")
    }
}
