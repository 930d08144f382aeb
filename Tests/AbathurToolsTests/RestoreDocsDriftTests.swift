import Foundation
import XCTest

/// The hand-written docs of abathur-restore (man/abathur-restore.8, completions/abathur-restore)
/// against what the built binary prints for `--help` and `--print-config`, as DocsDriftTests
/// does for abathur-backup and IntegrityDocsDriftTests for abathur-integrity; the helpers are
/// DocsDriftTests' own. The tool has no subcommands: its options are the common ones and its own.
final class RestoreDocsDriftTests: XCTestCase {
    static let tool = "abathur-restore"
    static var manPage: String { DocsDriftTests.repoRoot.appendingPathComponent("man/abathur-restore.8").path }
    static var completion: String { DocsDriftTests.repoRoot.appendingPathComponent("completions/abathur-restore").path }
    /// The `.SS` of OPTIONS that holds the options only this tool has.
    static let ownOptions = "abathur-restore options"
    /// The settings only abathur-restore uses: its CONFIGURATION section documents each.
    static let restoreSettings = ["services", "health_url", "health_command", "health_timeout", "health_retries",
                                  "health_interval", "incident_dir", "init_command"]

    /// `abathur-restore --help`, checked to succeed quietly.
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
        for (escape, plain) in [(#"\-"#, "-"), (#"\c"#, ""), (#"\&"#, ""), (#"\:"#, ""), (#"\fB"#, ""), (#"\fI"#, ""), (#"\fR"#, ""), (#"\fP"#, "")] {
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

        // The common options are the same as abathur-integrity's, documented as such.
        let integrityCommon = DocsDriftTests.longOptions(DocsDriftTests.tags(DocsDriftTests.section(
            "OPTIONS", subsection: "Common options", in: try IntegrityDocsDriftTests.manText())).joined(separator: "\n"))
        XCTAssertEqual(common, integrityCommon, "the common options of abathur-restore(8) and abathur-integrity(8)")

        // The SOURCE argument is documented with the options, and the tool's own options are
        // in the SYNOPSIS.
        XCTAssertTrue(text.contains("<source>"), "--help shows the SOURCE argument")
        XCTAssertTrue(DocsDriftTests.tags(ownLines).contains(".I source"), "'\(Self.ownOptions)' documents the source argument")
        let synopsis = DocsDriftTests.longOptions(DocsDriftTests.section("SYNOPSIS", in: page).joined(separator: "\n"))
        let ownListed = listed.subtracting(common)
        XCTAssertFalse(ownListed.isEmpty)
        XCTAssertTrue(ownListed.isSubset(of: synopsis), "own options missing from the SYNOPSIS: \(ownListed.subtracting(synopsis).sorted())")
        XCTAssertTrue(synopsis.isSubset(of: listed), "options in the SYNOPSIS that --help does not list: \(synopsis.subtracting(listed).sorted())")
    }

    // MARK: (b) man --warnings

    func testManPageFormatsWithoutWarnings() throws {
        try ManPage.assertFormatsWithoutWarnings(Self.manPage, naming: Self.tool)
    }

    // MARK: (c) bash completion

    func testCompletionLoads() throws {
        try Completion.assertLoads(tool: Self.tool, file: Self.completion)
    }

    func complete(_ words: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        try Completion.complete(tool: Self.tool, file: Self.completion, words, env: env, file: file, line: line)
    }

    func testCompletionOffersExactlyTheHelpOptions() throws {
        let listed = DocsDriftTests.helpOptions(try help())
        let completed = try complete([Self.tool, "--"])
        XCTAssertEqual(completed.count, Set(completed).count, "no option offered twice")
        XCTAssertEqual(Set(completed), listed,
                       "\(Self.tool) --<TAB> against '\(Self.tool) --help': "
                       + "not completed \(listed.subtracting(completed).sorted()), not in help \(Set(completed).subtracting(listed).sorted())")
        // The same behind options, their values and a source.
        for words in [[Self.tool, "--db", "/tmp/x.db", "--backup-dir", "/tmp", "--"],
                      [Self.tool, "--to", "/tmp/x.db", "--before", "2026-11-27", "--force", "--"],
                      [Self.tool, "--show", "x", "--"],
                      [Self.tool, "/tmp/x.db.gz", "--"]] {
            XCTAssertEqual(Set(try complete(words)), listed, words.joined(separator: " "))
        }
        XCTAssertEqual(Set(try complete([Self.tool, "--dr"])), ["--drill", "--dry-run"])
        XCTAssertEqual(try complete([Self.tool, "--no"]), ["--no-services"])
        // Values that are not paths or names are not guessed.
        for option in ["--before", "--wait", "--busy-timeout"] {
            XCTAssertEqual(try complete([Self.tool, option, ""]), [], option)
        }
    }

    /// A backup directory with three backups and things that are not backups.
    func backupDirectory(_ box: Sandbox) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: box.backups + "/subdir", withIntermediateDirectories: true)
        let names = ["abathur_2026-01-02_03-04-05.db.gz", "manual_20260102_030405.db.gz", "pre-migration_20260103_000000.db.gz"]
        for name in names + ["abathur_2026-01-02_03-04-05.db.gz.json", "SHA256SUMS", "notes.txt", "copy.db"] {
            XCTAssertTrue(fm.createFile(atPath: box.backups + "/" + name, contents: Data()))
        }
        return names
    }

    func testCompletionOffersBackupNamesFromTheBackupDirectory() throws {
        let box = try Sandbox()
        let names = Set(try backupDirectory(box))
        let elsewhere = box.root + "/live"

        // SOURCE and --show NAME: from --backup-dir on the line, in both spellings.
        XCTAssertEqual(Set(try complete([Self.tool, "--backup-dir", box.backups, ""])), names)
        XCTAssertEqual(Set(try complete([Self.tool, "--backup-dir", "=", box.backups, ""])), names, "--backup-dir=DIR, split at the =")
        XCTAssertEqual(Set(try complete([Self.tool, "--backup-dir=" + box.backups, ""])), names, "--backup-dir=DIR, one word")
        XCTAssertEqual(Set(try complete([Self.tool, "--dry-run", "--backup-dir", box.backups, "--no-services", ""])), names)
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", box.backups, "man"]), ["manual_20260102_030405.db.gz"])
        XCTAssertEqual(Set(try complete([Self.tool, "--backup-dir", box.backups, "--show", ""])), names)
        XCTAssertEqual(Set(try complete([Self.tool, "--backup-dir", box.backups, "--show", "=", ""])), names)
        XCTAssertEqual(try complete([Self.tool, "--show", "pre", "--backup-dir", box.backups + "/sub"]), [box.backups + "/subdir"],
                       "completing --backup-dir's value offers directories, not names")

        // From the environment, unless --backup-dir is on the line.
        XCTAssertEqual(Set(try complete([Self.tool, ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), names)
        XCTAssertEqual(Set(try complete([Self.tool, "--show", ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), names)
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", elsewhere, ""], env: ["ABATHUR_BACKUP_DIR": box.backups]), [],
                       "--backup-dir on the line wins over the environment")
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", box.backups + "/nonexistent", ""]), [], "no such directory: nothing")
    }

    func testCompletionFindsTheBackupDirectoryInTheConfigFile() throws {
        let box = try Sandbox()
        let names = Set(try backupDirectory(box))
        let elsewhere = box.root + "/live"
        // As the tool reads it: comments, spaces, double quotes, the last line wins.
        let config = box.root + "/restore.conf"
        try """
            # backup_dir = \(elsewhere)
            database = /var/lib/abathur/abathur.db
            backup_dir = \(elsewhere)
              backup_dir   =  "\(box.backups)"
            retention_days = 30

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let other = box.root + "/other.conf"
        try "backup_dir = \(elsewhere)\n".write(toFile: other, atomically: true, encoding: .utf8)
        // The tool agrees about what the file says.
        let printed = try box.run(Self.tool, ["--print-config", "--config", config])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(printed.stdout.contains("backup_dir=\(box.backups)\t# "), printed.stdout)

        XCTAssertEqual(Set(try complete([Self.tool, "--config", config, ""])), names, "--config FILE on the line")
        XCTAssertEqual(Set(try complete([Self.tool, "--config", "=", config, "--show", ""])), names, "--config=FILE, split at the =")
        XCTAssertEqual(Set(try complete([Self.tool, "--config=" + config, ""])), names, "--config=FILE, one word")
        XCTAssertEqual(Set(try complete([Self.tool, ""], env: ["ABATHUR_CONFIG": config])), names, "$ABATHUR_CONFIG")
        XCTAssertEqual(Set(try complete([Self.tool, "--config", config, ""], env: ["ABATHUR_CONFIG": other])), names,
                       "--config on the line wins over $ABATHUR_CONFIG")
        // The config file comes after the flag and the environment.
        XCTAssertEqual(try complete([Self.tool, "--config", config, "--backup-dir", elsewhere, ""]), [],
                       "--backup-dir on the line wins over the config file")
        XCTAssertEqual(try complete([Self.tool, "--config", config, ""], env: ["ABATHUR_BACKUP_DIR": elsewhere]), [],
                       "$ABATHUR_BACKUP_DIR wins over the config file")
        XCTAssertEqual(Set(try complete([Self.tool, "--config", other, ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), names)
        // A missing or unreadable config file is not an error while completing.
        XCTAssertNoThrow(try complete([Self.tool, "--config", box.root + "/missing.conf", ""]))
    }

    func testCompletionOffersFilesForPathsAndSourceOnlyWhereItIsAccepted() throws {
        let box = try Sandbox()
        let names = try backupDirectory(box)
        let everything = Set((names + ["abathur_2026-01-02_03-04-05.db.gz.json", "SHA256SUMS", "notes.txt", "copy.db", "subdir"])
            .map { box.backups + "/" + $0 })

        // Options that take a path.
        XCTAssertEqual(Set(try complete([Self.tool, "--to", box.backups + "/"])), everything, "--to offers files")
        XCTAssertEqual(try complete([Self.tool, "--to", box.backups + "/co"]), [box.backups + "/copy.db"])
        XCTAssertEqual(try complete([Self.tool, "--to", "=", box.backups + "/co"]), [box.backups + "/copy.db"])
        XCTAssertEqual(try complete([Self.tool, "--backup-dir", box.backups + "/no"]), [], "--backup-dir offers directories only")
        for option in ["--db", "--config", "--prometheus"] {
            XCTAssertEqual(try complete([Self.tool, option, box.backups + "/no"]), [box.backups + "/notes.txt"], option)
        }

        // A SOURCE with a '/' is a path: files and directories, whatever their names.
        XCTAssertEqual(Set(try complete([Self.tool, box.backups + "/"])), everything)
        XCTAssertEqual(Set(try complete([Self.tool, "--dry-run", "--to", "/tmp/x.db", box.backups + "/ma"])), [box.backups + "/" + names[1]])

        // SOURCE once, and never where the tool takes none.
        let env = ["ABATHUR_BACKUP_DIR": box.backups]
        XCTAssertEqual(Set(try complete([Self.tool, "--drill", ""], env: env)), Set(names), "--drill takes a SOURCE")
        XCTAssertEqual(try complete([Self.tool, names[0], ""], env: env), [], "one SOURCE only")
        XCTAssertEqual(try complete([Self.tool, box.backups + "/copy.db", box.backups + "/"], env: env), [], "one SOURCE only")
        for words in [["--list"], ["--reinit"], ["--before", "2026-11-27"], ["--before=2026-11-27"], ["--show", names[0]]] {
            XCTAssertEqual(try complete([Self.tool] + words + [""], env: env), [], "no SOURCE after \(words.joined(separator: " "))")
        }
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
        // What each code means for a restore: codes of the table, in order.
        let own = codes(DocsDriftTests.section("EXIT STATUS", subsection: "For abathur-restore", in: page))
        XCTAssertFalse(own.isEmpty, "EXIT STATUS has a 'For abathur-restore' subsection")
        XCTAssertEqual(own, own.sorted { Int($0)! < Int($1)! }, "in order")
        XCTAssertTrue(Set(own).isSubset(of: Set((0...9).map(String.init))), "\(own)")
        for code in ["0", "3", "7"] { XCTAssertTrue(own.contains(code), "'For abathur-restore' explains exit \(code)") }
    }

    // MARK: (e) configuration

    func testConfigurationDocumentsTheRestoreSettingsWithTheirDefaults() throws {
        let box = try Sandbox()
        let run = try box.run(Self.tool, ["--print-config"])
        XCTAssertEqual(run.status, 0, run.stderr)
        var defaults: [String: String] = [:]
        for row in run.stdout.split(separator: "\n") {
            let setting = row.components(separatedBy: "\t# ")[0]
            guard let equals = setting.firstIndex(of: "=") else { XCTFail("a --print-config line: \(row)"); continue }
            defaults[String(setting[..<equals])] = String(setting[setting.index(after: equals)...])
        }
        XCTAssertTrue(Set(Self.restoreSettings).isSubset(of: Set(defaults.keys)),
                      "--print-config lists the restore settings: missing \(Set(Self.restoreSettings).subtracting(defaults.keys).sorted())")

        let section = DocsDriftTests.section("CONFIGURATION", in: try Self.manText())
        XCTAssertFalse(section.isEmpty, "the man page has a CONFIGURATION section")
        // Each `.TP` item: its tag (`.B key`) and its body up to the next `.TP`.
        var items: [String: String] = [:]
        var index = 0
        while index < section.count {
            if section[index].hasPrefix(".TP"), index + 1 < section.count, section[index + 1].hasPrefix(".B ") {
                let key = section[index + 1].dropFirst(3).trimmingCharacters(in: .whitespaces)
                let body = section[(index + 2)...].prefix { !$0.hasPrefix(".TP") && !$0.hasPrefix(".SH") }
                XCTAssertNil(items[key], "\(key) is documented once")
                items[key] = body.joined(separator: "\n")
            }
            index += 1
        }
        XCTAssertEqual(Set(items.keys).subtracting(defaults.keys).sorted(), [],
                       "CONFIGURATION documents keys that --print-config does not know")
        for key in Self.restoreSettings {
            guard let body = items[key] else { XCTFail("CONFIGURATION documents \(key) (as a '.TP' / '.B \(key)' item)"); continue }
            let value = defaults[key] ?? "?"
            XCTAssertTrue(body.contains("ABATHUR_" + key.uppercased()), "\(key): names its environment variable")
            if value.isEmpty {
                XCTAssertTrue(body.contains("Default empty"), "\(key): the default is empty (--print-config)")
            } else {
                let stated = body.range(of: "Default", options: .backwards).map { String(body[$0.lowerBound...]) } ?? ""
                XCTAssertTrue(stated.contains(value), "\(key): the default is '\(value)' (--print-config); the page says: \(stated)")
            }
        }
    }

    // MARK: (f) examples

    func testExamplesAreARunbookWithOptionsTheToolAccepts() throws {
        let page = try Self.manText()
        let examples = DocsDriftTests.section("EXAMPLES", in: page)
        XCTAssertFalse(examples.isEmpty, "the man page has an EXAMPLES section")
        let headings = examples.filter { $0.hasPrefix(".SS ") }
        XCTAssertGreaterThanOrEqual(headings.count, 5, "EXAMPLES is a runbook, one .SS per situation: \(headings)")
        let commands = DocsDriftTests.tags(examples).map { $0.hasPrefix(".B ") ? String($0.dropFirst(3)) : $0 }

        // The situations the runbook covers, each by the command an operator types.
        func has(_ what: String, _ test: (String) -> Bool) {
            XCTAssertTrue(commands.contains(where: test), "EXAMPLES: \(what)")
        }
        has("abathur-integrity first") { $0.hasPrefix("abathur-integrity") }
        has("a dry run") { $0.hasPrefix("abathur-restore") && $0.contains("--dry-run") }
        has("a plain restore") { $0 == "abathur-restore" }
        has("reading the incident record") { $0.contains("incidents/") && $0.hasSuffix("-restore.md") }
        has("a restore to before a time") { $0.hasPrefix("abathur-restore") && $0.contains("--before") && !$0.contains("--dry-run") }
        has("a restore from another host on stdin") { $0.hasPrefix("ssh ") && $0.hasSuffix("| abathur-restore -") }
        has("a drill with metrics") { $0.contains("abathur-restore --drill") && $0.contains("--prometheus") }
        has("a fresh start") { $0.hasPrefix("abathur-restore") && $0.contains("--reinit") }
        has("a restore into a scratch path") { $0.hasPrefix("abathur-restore") && $0.contains("--to ") }

        // Every option an abathur-restore example uses is one the tool accepts.
        let accepted = DocsDriftTests.helpOptions(try help())
        for command in commands where command.contains("abathur-restore") {
            var invocation = command[command.range(of: "abathur-restore", options: .backwards)!.upperBound...]
            if let pipe = invocation.range(of: "|") { invocation = invocation[..<pipe.lowerBound] }
            let used = DocsDriftTests.longOptions(String(invocation))
            XCTAssertTrue(used.isSubset(of: accepted), "\(command): \(used.subtracting(accepted).sorted()) not in --help")
        }
    }
}
