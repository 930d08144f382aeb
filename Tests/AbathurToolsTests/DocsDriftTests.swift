import Foundation
import XCTest
@testable import AbathurTestSupport

/// Each tool's hand-written docs (man/TOOL.8, completions/TOOL) against what the built binary
/// prints for `--help`: the test fails when an option is added, renamed or removed in one
/// place and not the other (STYLE.md, "Man pages"). One table, `docs`, says what is
/// particular to each tool; the checks run over every tool the binary lists
/// (`abathur-tools --list-tools`), so a new tool cannot ship without its page and completion.
final class DocsDriftTests: XCTestCase {
    /// What the drift checks need to know about one tool beyond its name.
    struct ToolDocs: Sendable {
        /// The subcommands `--help` lists (none: the options are the common ones and the
        /// tool's own, in the OPTIONS subsection "TOOL options").
        var subcommands: [String] = []
        /// The positional argument as `--help` shows it and as the page's own options tag it.
        var argument: (help: String, tag: String)?
        /// Command lines (after the tool's name) behind which `--<TAB>` still offers every option.
        var completedBehind: [[String]] = []
        /// A prefix and exactly what completing it offers.
        var completedPrefixes: [(prefix: String, offered: [String])] = []
        /// Options whose values are neither paths nor names: completing them offers nothing.
        var valuesNotGuessed: [String] = []
        /// The `.SS` subsections of EXIT STATUS after the shared table, checked by the closure.
        var exitSubsections: (@Sendable (_ page: String, _ codes: ([String]) -> [String]) -> Void)?
        /// Settings the page's CONFIGURATION documents as `.TP`/`.B key` items, each with its
        /// environment variable and its default (abathur-backup's page documents every key:
        /// ConfigFileDriftTests).
        var configuration: [String] = []
    }

    static let docs: [String: ToolDocs] = [
        "abathur-backup": ToolDocs(subcommands: ["take", "status", "verify", "prune"]),
        "abathur-integrity": ToolDocs(
            argument: ("<path>", ".I path"),
            completedBehind: [["--db", "/tmp/x.db", "--backup-dir", "/tmp"], ["--backup", "x", "--sample", "15", "--quick"], ["/tmp/x.db"]],
            completedPrefixes: [("--all", ["--all-backups"])],
            exitSubsections: { page, codes in
                let nagios = DocsDriftTests.section("EXIT STATUS", subsection: "With --nagios", in: page)
                XCTAssertEqual(codes(nagios), (0...3).map(String.init), "EXIT STATUS has a 'With --nagios' subsection listing 0 to 3")
            }),
        "abathur-restore": ToolDocs(
            argument: ("<source>", ".I source"),
            completedBehind: [["--db", "/tmp/x.db", "--backup-dir", "/tmp"], ["--to", "/tmp/x.db", "--before", "2026-11-27", "--force"],
                              ["--show", "x"], ["/tmp/x.db.gz"], ["--migrate", "milestone-3-down", "--expect-tables", "tasks,agents"],
                              ["--migrate=/tmp/x.sql", "--dry-run"]],
            completedPrefixes: [("--dr", ["--drill", "--dry-run"]), ("--no", ["--no-services"]), ("--mi", ["--migrate"]),
                                ("--ex", ["--expect-tables"])],
            valuesNotGuessed: ["--before", "--wait", "--busy-timeout", "--expect-tables"],
            exitSubsections: { page, codes in
                // What each code means for a restore and for a migration: codes of each table, in order.
                for (subsection, explained) in [("For abathur-restore", ["0", "3", "7"]), ("For abathur-restore --migrate", ["0", "1", "2", "3", "7"])] {
                    let own = codes(DocsDriftTests.section("EXIT STATUS", subsection: subsection, in: page))
                    XCTAssertFalse(own.isEmpty, "EXIT STATUS has a '\(subsection)' subsection")
                    XCTAssertEqual(own, own.sorted { Int($0)! < Int($1)! }, "\(subsection): in order")
                    XCTAssertTrue(Set(own).isSubset(of: Set((0...9).map(String.init))), "\(subsection): \(own)")
                    for code in explained { XCTAssertTrue(own.contains(code), "'\(subsection)' explains exit \(code)") }
                }
            },
            configuration: ["services", "health_url", "health_command", "health_timeout", "health_retries",
                            "health_interval", "incident_dir", "init_command", "safety_keep", "safety_max_age"]),
        "abathur-walfix": ToolDocs(
            subcommands: ["inspect", "checkpoint", "repair"],
            exitSubsections: { page, codes in
                // What each code means for each subcommand: codes of the table, in order.
                let own = codes(DocsDriftTests.section("EXIT STATUS", subsection: "For abathur-walfix", in: page))
                XCTAssertFalse(own.isEmpty, "EXIT STATUS has a 'For abathur-walfix' subsection")
                XCTAssertEqual(own, own.sorted { Int($0)! < Int($1)! }, "in order")
                XCTAssertTrue(Set(own).isSubset(of: Set((0...9).map(String.init))), "\(own)")
                for code in ["0", "1", "3", "4", "5", "7"] { XCTAssertTrue(own.contains(code), "'For abathur-walfix' explains exit \(code)") }
            },
            configuration: ["lock_wait", "busy_timeout_ms", "temp_dir", "services"]),
        "abathur-diskcheck": ToolDocs(
            completedBehind: [["--db", "/tmp/x.db", "--backup-dir", "/tmp"], ["--fix", "--target", "75%", "--include-manual"],
                              ["--warn", "80%", "--crit-free=2GiB", "--nagios"]],
            completedPrefixes: [("--w", ["--wait", "--warn", "--warn-free"]), ("--cr", ["--crit", "--crit-free"]), ("--in", ["--include-manual"])],
            valuesNotGuessed: ["--warn", "--crit", "--warn-free", "--crit-free", "--target", "--wait", "--busy-timeout"],
            exitSubsections: { page, codes in
                // What each code means for a report, a plan and a fix: codes of the table, in order.
                let own = codes(DocsDriftTests.section("EXIT STATUS", subsection: "For abathur-diskcheck", in: page))
                XCTAssertFalse(own.isEmpty, "EXIT STATUS has a 'For abathur-diskcheck' subsection")
                XCTAssertEqual(own, own.sorted { Int($0)! < Int($1)! }, "in order")
                XCTAssertTrue(Set(own).isSubset(of: Set((0...9).map(String.init))), "\(own)")
                for code in ["0", "1", "4", "5", "6", "8"] { XCTAssertTrue(own.contains(code), "'For abathur-diskcheck' explains exit \(code)") }
                let nagios = DocsDriftTests.section("EXIT STATUS", subsection: "With --nagios", in: page)
                XCTAssertEqual(codes(nagios), (0...3).map(String.init), "EXIT STATUS has a 'With --nagios' subsection listing 0 to 3")
            },
            configuration: ["disk_warn", "disk_crit", "disk_warn_free", "disk_crit_free", "reserve", "keep_min_verified",
                            "safety_keep", "safety_max_age", "services", "temp_dir"]),
    ]

    static let repoRoot = Repository.root
    static func manPage(_ tool: String, section: Int = 8) -> String { repoRoot.appendingPathComponent("man/\(tool).\(section)").path }
    static func completion(_ tool: String) -> String { repoRoot.appendingPathComponent("completions/\(tool)").path }

    /// Every tool with its table row; a tool without one fails here.
    func tools(file: StaticString = #filePath, line: UInt = #line) -> [(name: String, docs: ToolDocs)] {
        XCTAssertFalse(Binaries.tools.isEmpty, "abathur-tools --list-tools lists the tools", file: file, line: line)
        return Binaries.tools.compactMap { tool in
            guard let docs = Self.docs[tool] else {
                XCTFail("\(tool): add its row to DocsDriftTests.docs", file: file, line: line)
                return nil
            }
            return (tool, docs)
        }
    }

    // MARK: help

    /// `TOOL --help` (nil) or `TOOL help SUB`, checked to succeed quietly.
    func help(_ tool: String, _ subcommand: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let args = subcommand.map { ["help", $0] } ?? ["--help"]
        let run = try Sandbox.execute(Binaries.tool(tool), args)
        XCTAssertEqual(run.status, 0, "\(tool) \(args.joined(separator: " ")): \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stderr, "", file: file, line: line)
        XCTAssertFalse(run.stdout.isEmpty, file: file, line: line)
        return run.stdout
    }

    /// Every `--long-option` in a text.
    static func longOptions(_ text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: #"(?<![A-Za-z0-9-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*"#)
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).map { String(text[Range($0.range, in: text)!]) })
    }

    /// Every `--long-option` in the OPTIONS: part of a `--help` text (the overview and
    /// discussion may mention options of other commands).
    static func helpOptions(_ help: String) -> Set<String> {
        var inside = false
        var lines: [Substring] = []
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("OPTIONS:") { inside = true; continue }
            if inside, !line.isEmpty, !line.hasPrefix(" ") { break }
            if inside { lines.append(line) }
        }
        return longOptions(lines.joined(separator: "\n"))
    }

    /// The subcommands the root help lists under SUBCOMMANDS.
    static func listedSubcommands(_ rootHelp: String) -> [String] {
        var inside = false
        var names: [String] = []
        for line in rootHelp.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("SUBCOMMANDS:") { inside = true; continue }
            guard inside else { continue }
            // The list ends at the first blank line (a "See 'abathur-backup help'" note follows).
            if line.isEmpty { if names.isEmpty { continue } else { break } }
            if !line.hasPrefix(" ") { break }
            // "  take (default)   Take a ..." names a subcommand; continuation lines are indented deeper.
            if line.hasPrefix("  "), !line.hasPrefix("   "), let first = line.split(separator: " ").first {
                names.append(String(first))
            }
        }
        return names
    }

    // MARK: man page

    /// The page's source with roff escapes for hyphens, fonts, joins and break points removed.
    static func manText(_ tool: String = "abathur-backup", section: Int = 8) throws -> String {
        var text = try String(contentsOfFile: manPage(tool, section: section), encoding: .utf8)
        for (escape, plain) in [(#"\-"#, "-"), (#"\c"#, ""), (#"\&"#, ""), (#"\:"#, ""), (#"\fB"#, ""), (#"\fI"#, ""), (#"\fR"#, ""), (#"\fP"#, "")] {
            text = text.replacingOccurrences(of: escape, with: plain)
        }
        return text
    }

    /// Lines of the `.SH` section `title` (without the heading), or of the `.SS` subsection
    /// `subsection` inside it.
    static func section(_ title: String, subsection: String? = nil, in text: String) -> [String] {
        func heading(_ line: Substring, _ macro: String) -> String? {
            guard line.hasPrefix(macro + " ") else { return nil }
            return line.dropFirst(macro.count + 1).trimmingCharacters(in: .whitespaces)
                .trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        var lines: [String] = []
        var inSection = false, inSubsection = subsection == nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let name = heading(line, ".SH") {
                inSection = name == title
                inSubsection = subsection == nil
                continue
            }
            if inSection, let subsection, let name = heading(line, ".SS") {
                inSubsection = name == subsection
                continue
            }
            if inSection && inSubsection { lines.append(String(line)) }
        }
        return lines
    }

    /// The tags of the `.TP` items in `lines`: the line that follows each `.TP`.
    static func tags(_ lines: [String]) -> [String] {
        zip(lines, lines.dropFirst()).filter { $0.0.hasPrefix(".TP") }.map { $0.1 }
    }

    /// The options tagged in OPTIONS' `.SS subsection`.
    static func documentedOptions(_ subsection: String, in page: String) -> Set<String> {
        longOptions(tags(section("OPTIONS", subsection: subsection, in: page)).joined(separator: "\n"))
    }

    // MARK: (a) options in --help and in the man page

    func testEveryHelpOptionIsInTheManPageAndBack() throws {
        var commonOptions: [String: Set<String>] = [:]
        for (tool, docs) in tools() {
            let page = try Self.manText(tool)
            let options = Self.section("OPTIONS", in: page)
            XCTAssertFalse(options.isEmpty, "\(tool): the man page has an OPTIONS section")
            let common = Self.documentedOptions("Common options", in: page)
            XCTAssertFalse(common.isEmpty, "\(tool): OPTIONS has a 'Common options' subsection")
            commonOptions[tool] = common
            let root = try help(tool)
            XCTAssertEqual(Set(Self.listedSubcommands(root)), Set(docs.subcommands), "\(tool): the subcommands this test and the docs know")
            if docs.subcommands.isEmpty {
                try assertOptionsWithoutSubcommands(tool, docs, page: page, help: root, common: common)
            } else {
                try assertOptionsWithSubcommands(tool, docs, page: page, help: root, common: common)
            }
        }
        // The tools without subcommands document the same common options.
        let flat = tools().filter { $0.docs.subcommands.isEmpty }.map(\.name)
        for (a, b) in zip(flat, flat.dropFirst()) {
            XCTAssertEqual(commonOptions[a], commonOptions[b], "the common options of \(a)(8) and \(b)(8)")
        }
    }

    func assertOptionsWithSubcommands(_ tool: String, _ docs: ToolDocs, page: String, help root: String, common: Set<String>) throws {
        var everyHelpOption = Set<String>()
        let rootOptions = Self.helpOptions(root)
        XCTAssertTrue(rootOptions.isSubset(of: common),
                      "options of '\(tool) --help' missing from the man page's common options: \(rootOptions.subtracting(common).sorted())")
        everyHelpOption.formUnion(rootOptions)

        let documentedSubcommands = Set(Self.tags(Self.section("SUBCOMMANDS", in: page)).compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) })
        XCTAssertTrue(Set(docs.subcommands).isSubset(of: documentedSubcommands),
                      "\(tool): subcommands missing from the man page's SUBCOMMANDS: \(Set(docs.subcommands).subtracting(documentedSubcommands).sorted())")
        let synopsis = Self.section("SYNOPSIS", in: page).joined(separator: "\n")
        for subcommand in docs.subcommands {
            XCTAssertTrue(synopsis.contains(subcommand), "\(tool): SYNOPSIS shows \(subcommand)")
        }

        for subcommand in docs.subcommands {
            let text = try help(tool, subcommand)
            let listed = Self.helpOptions(text)
            XCTAssertFalse(listed.isEmpty, "\(tool) help \(subcommand) lists options")
            // `SUB --help` and `help SUB` are the same text.
            let flagForm = try Sandbox.execute(Binaries.tool(tool), [subcommand, "--help"])
            XCTAssertEqual(flagForm.status, 0, flagForm.stderr)
            XCTAssertEqual(Self.helpOptions(flagForm.stdout), listed, "\(tool) \(subcommand) --help and help \(subcommand)")

            let own = Self.documentedOptions("\(subcommand) options", in: page)
            let documented = common.union(own)
            XCTAssertTrue(listed.isSubset(of: documented),
                          "options of '\(tool) help \(subcommand)' missing from the man page (common options or '\(subcommand) options'): \(listed.subtracting(documented).sorted())")
            everyHelpOption.formUnion(listed)
        }

        let inPage = Self.longOptions(Self.section("OPTIONS", in: page).joined(separator: "\n"))
        XCTAssertTrue(inPage.isSubset(of: everyHelpOption),
                      "\(tool): options in the man page's OPTIONS that no --help lists: \(inPage.subtracting(everyHelpOption).sorted())")
    }

    func assertOptionsWithoutSubcommands(_ tool: String, _ docs: ToolDocs, page: String, help text: String, common: Set<String>) throws {
        let ownOptions = "\(tool) options"
        let ownLines = Self.section("OPTIONS", subsection: ownOptions, in: page)
        let own = Self.longOptions(Self.tags(ownLines).joined(separator: "\n"))
        XCTAssertFalse(own.isEmpty, "\(tool): OPTIONS has an '\(ownOptions)' subsection")

        let listed = Self.helpOptions(text)
        XCTAssertFalse(listed.isEmpty, "\(tool) --help lists options")
        let documented = common.union(own)
        XCTAssertTrue(listed.isSubset(of: documented),
                      "options of '\(tool) --help' missing from the man page (common options or '\(ownOptions)'): \(listed.subtracting(documented).sorted())")
        let inPage = Self.longOptions(Self.section("OPTIONS", in: page).joined(separator: "\n"))
        XCTAssertTrue(inPage.isSubset(of: listed),
                      "options in the man page's OPTIONS that '\(tool) --help' does not list: \(inPage.subtracting(listed).sorted())")

        // The positional argument is documented with the options, and the tool's own options
        // are in the SYNOPSIS.
        if let argument = docs.argument {
            XCTAssertTrue(text.contains(argument.help), "\(tool) --help shows the \(argument.help) argument")
            XCTAssertTrue(Self.tags(ownLines).contains(argument.tag), "'\(ownOptions)' documents the \(argument.help) argument")
        }
        let synopsis = Self.longOptions(Self.section("SYNOPSIS", in: page).joined(separator: "\n"))
        let ownListed = listed.subtracting(common)
        XCTAssertFalse(ownListed.isEmpty, "\(tool) has options of its own")
        XCTAssertTrue(ownListed.isSubset(of: synopsis), "\(tool): own options missing from the SYNOPSIS: \(ownListed.subtracting(synopsis).sorted())")
        XCTAssertTrue(synopsis.isSubset(of: listed), "\(tool): options in the SYNOPSIS that --help does not list: \(synopsis.subtracting(listed).sorted())")
    }

    // MARK: (b) man --warnings

    func testManPagesFormatWithoutWarnings() throws {
        for (tool, _) in tools() {
            try ManPage.assertFormatsWithoutWarnings(Self.manPage(tool), naming: tool)
        }
    }

    /// The man pages and completions are the tools' own: none for a tool that does not exist.
    func testEveryManPageAndCompletionIsATools() throws {
        let tools = Set(tools().map(\.name))
        let fm = FileManager.default
        let pages = try fm.contentsOfDirectory(atPath: Self.repoRoot.appendingPathComponent("man").path).filter { $0.hasSuffix(".8") }
        XCTAssertEqual(Set(pages.map { String($0.dropLast(2)) }), tools, "man/*.8 against 'abathur-tools --list-tools'")
        let completions = try fm.contentsOfDirectory(atPath: Self.repoRoot.appendingPathComponent("completions").path)
        XCTAssertEqual(Set(completions), tools, "completions/* against 'abathur-tools --list-tools'")
    }

    /// abathur-tools(7) names the link of every tool in FILES, and no other.
    func testTheSuitePageListsEveryTool() throws {
        let files = Self.section("FILES", in: try Self.manText("abathur-tools", section: 7))
        XCTAssertFalse(files.isEmpty, "abathur-tools(7) has a FILES section")
        let links = Self.tags(files).filter { $0.hasPrefix(".I /usr/sbin/") }.map { String($0.dropFirst(".I /usr/sbin/".count)) }
        XCTAssertEqual(links, tools().map(\.name), "abathur-tools(7) FILES: one /usr/sbin link per tool, in the binary's order")
    }

    // MARK: (c) bash completion

    func testCompletionsLoad() throws {
        for (tool, _) in tools() {
            try Completion.assertLoads(tool: tool, file: Self.completion(tool))
        }
    }

    func complete(_ tool: String, _ words: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        try Completion.complete(tool: tool, file: Self.completion(tool), [tool] + words, env: env, file: file, line: line)
    }

    func testCompletionsOfferExactlyTheHelpOptions() throws {
        for (tool, docs) in tools() {
            if docs.subcommands.isEmpty {
                try assertCompletionOffersExactlyTheHelpOptions(tool, docs)
            } else {
                try assertCompletionOffersSubcommandsAndExactlyTheOptionsOfEach(tool, docs)
            }
        }
    }

    func assertCompletionOffersExactlyTheHelpOptions(_ tool: String, _ docs: ToolDocs) throws {
        let listed = Self.helpOptions(try help(tool))
        let completed = try complete(tool, ["--"])
        XCTAssertEqual(completed.count, Set(completed).count, "\(tool): no option offered twice")
        XCTAssertEqual(Set(completed), listed,
                       "\(tool) --<TAB> against '\(tool) --help': "
                       + "not completed \(listed.subtracting(completed).sorted()), not in help \(Set(completed).subtracting(listed).sorted())")
        // The same behind options, their values and an argument.
        for words in docs.completedBehind {
            XCTAssertEqual(Set(try complete(tool, words + ["--"])), listed, "\(tool) \(words.joined(separator: " "))")
        }
        for (prefix, offered) in docs.completedPrefixes {
            XCTAssertEqual(Set(try complete(tool, [prefix])), Set(offered), "\(tool) \(prefix)<TAB>")
        }
        // Values that are not paths or names are not guessed.
        for option in docs.valuesNotGuessed {
            XCTAssertEqual(try complete(tool, [option, ""]), [], "\(tool) \(option)")
        }
    }

    func assertCompletionOffersSubcommandsAndExactlyTheOptionsOfEach(_ tool: String, _ docs: ToolDocs) throws {
        let root = try help(tool)
        let subcommands = Set(Self.listedSubcommands(root))
        let offered = Set(try complete(tool, [""]))
        XCTAssertTrue(subcommands.isSubset(of: offered), "\(tool): subcommands not completed: \(subcommands.subtracting(offered).sorted())")
        XCTAssertTrue(offered.subtracting(subcommands).isSubset(of: ["help"]), "\(tool): completed but not a subcommand: \(offered.subtracting(subcommands).sorted())")
        XCTAssertEqual(Set(try complete(tool, ["help", ""])), subcommands)

        var helpOptions: [String: Set<String>] = [:]
        for subcommand in docs.subcommands {
            let listed = Self.helpOptions(try help(tool, subcommand))
            helpOptions[subcommand] = listed
            let completed = try complete(tool, [subcommand, "--"])
            XCTAssertEqual(completed.count, Set(completed).count, "\(tool) \(subcommand): no option offered twice")
            XCTAssertEqual(Set(completed), listed,
                           "\(tool) \(subcommand) --<TAB> against '\(tool) help \(subcommand)': "
                           + "not completed \(listed.subtracting(completed).sorted()), not in help \(Set(completed).subtracting(listed).sorted())")
            // The subcommand is found behind common options and their values too.
            let behind = try complete(tool, ["--db", "/tmp/x.db", "--backup-dir", "/tmp", subcommand, "--"])
            XCTAssertEqual(Set(behind), listed, "\(tool) --db X --backup-dir Y \(subcommand) --<TAB>")
        }

        // Without a subcommand the tool runs its default one: its own options and that one's.
        let rootOptions = Self.helpOptions(root)
        let atRoot = Set(try complete(tool, ["--"]))
        XCTAssertTrue(rootOptions.isSubset(of: atRoot), "\(tool): root options not completed: \(rootOptions.subtracting(atRoot).sorted())")
        let allowed = rootOptions.union(helpOptions[docs.subcommands[0]] ?? [])
        XCTAssertTrue(atRoot.isSubset(of: allowed), "\(tool): completed at the root but accepted by neither the root nor \(docs.subcommands[0]): \(atRoot.subtracting(allowed).sorted())")
    }

    /// Options that take a path, in every tool: `--backup-dir` offers directories only, the
    /// others files.
    func testCompletionsOfferPathsForPathOptions() throws {
        let box = try Sandbox()
        let fm = FileManager.default
        try fm.createDirectory(atPath: box.backups + "/subdir", withIntermediateDirectories: true)
        XCTAssertTrue(fm.createFile(atPath: box.backups + "/notes.txt", contents: Data()))
        for (tool, _) in tools() {
            XCTAssertEqual(try complete(tool, ["--backup-dir", box.backups + "/sub"]), [box.backups + "/subdir"], tool)
            XCTAssertEqual(try complete(tool, ["--backup-dir", box.backups + "/no"]), [], "\(tool): --backup-dir offers directories only")
            for option in ["--db", "--config", "--prometheus"] {
                XCTAssertEqual(try complete(tool, [option, box.backups + "/no"]), [box.backups + "/notes.txt"], "\(tool) \(option)")
            }
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

    func testBackupCompletionOffersBackupNames() throws {
        let tool = "abathur-backup"
        let box = try Sandbox()
        let names = try backupDirectory(box)
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir", box.backups, "verify", ""])), Set(names))
        XCTAssertEqual(Set(try complete(tool, ["verify", "--backup-dir", box.backups, ""])), Set(names))
        XCTAssertEqual(try complete(tool, ["verify", "--backup-dir", box.backups, "man"]), ["manual_20260102_030405.db.gz"])
        XCTAssertEqual(Set(try complete(tool, ["verify", ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), Set(names))
        // --backup-dir on the line wins over the environment.
        XCTAssertEqual(try complete(tool, ["verify", "--backup-dir", box.root + "/live", ""], env: ["ABATHUR_BACKUP_DIR": box.backups]), [])
        // Behind a subcommand, the path options complete as at the root.
        XCTAssertEqual(try complete(tool, ["status", "--backup-dir", box.backups + "/no"]), [], "--backup-dir offers directories only")
        for option in ["--db", "--config", "--prometheus"] {
            XCTAssertEqual(try complete(tool, ["take", option, box.backups + "/no"]), [box.backups + "/notes.txt"], option)
        }
    }

    func testIntegrityCompletionOffersPathsAndBackupNames() throws {
        let tool = "abathur-integrity"
        let box = try Sandbox()
        let names = try backupDirectory(box)

        // --backup NAME: from --backup-dir on the line, else the environment.
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir", box.backups, "--backup", ""])), Set(names))
        // `--opt=value`, which bash splits at the `=`.
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir", "=", box.backups, "--backup", "=", ""])), Set(names))
        XCTAssertEqual(try complete(tool, ["--backup-dir", box.backups, "--backup", "man"]), ["manual_20260102_030405.db.gz"])
        XCTAssertEqual(Set(try complete(tool, ["--backup", ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), Set(names))
        XCTAssertEqual(try complete(tool, ["--backup-dir", box.root + "/live", "--backup", ""], env: ["ABATHUR_BACKUP_DIR": box.backups]), [],
                       "--backup-dir on the line wins over the environment")

        // PATH: directories, .db and .db.gz files, and nothing else; only once.
        let paths = Set(try complete(tool, [box.backups + "/"]))
        XCTAssertEqual(paths, Set((names + ["copy.db", "subdir"]).map { box.backups + "/" + $0 }))
        XCTAssertEqual(Set(try complete(tool, ["--quick", "--db", box.db, box.backups + "/c"])), [box.backups + "/copy.db"])
        XCTAssertEqual(try complete(tool, [box.backups + "/copy.db", box.backups + "/"]), [], "one PATH only")
    }

    func testRestoreCompletionOffersBackupNamesFromTheBackupDirectory() throws {
        let tool = "abathur-restore"
        let box = try Sandbox()
        let names = Set(try backupDirectory(box))
        let elsewhere = box.root + "/live"

        // SOURCE and --show NAME: from --backup-dir on the line, in both spellings.
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir", box.backups, ""])), names)
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir", "=", box.backups, ""])), names, "--backup-dir=DIR, split at the =")
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir=" + box.backups, ""])), names, "--backup-dir=DIR, one word")
        XCTAssertEqual(Set(try complete(tool, ["--dry-run", "--backup-dir", box.backups, "--no-services", ""])), names)
        XCTAssertEqual(try complete(tool, ["--backup-dir", box.backups, "man"]), ["manual_20260102_030405.db.gz"])
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir", box.backups, "--show", ""])), names)
        XCTAssertEqual(Set(try complete(tool, ["--backup-dir", box.backups, "--show", "=", ""])), names)
        XCTAssertEqual(try complete(tool, ["--show", "pre", "--backup-dir", box.backups + "/sub"]), [box.backups + "/subdir"],
                       "completing --backup-dir's value offers directories, not names")

        // From the environment, unless --backup-dir is on the line.
        XCTAssertEqual(Set(try complete(tool, [""], env: ["ABATHUR_BACKUP_DIR": box.backups])), names)
        XCTAssertEqual(Set(try complete(tool, ["--show", ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), names)
        XCTAssertEqual(try complete(tool, ["--backup-dir", elsewhere, ""], env: ["ABATHUR_BACKUP_DIR": box.backups]), [],
                       "--backup-dir on the line wins over the environment")
        XCTAssertEqual(try complete(tool, ["--backup-dir", box.backups + "/nonexistent", ""]), [], "no such directory: nothing")
    }

    func testRestoreCompletionFindsTheBackupDirectoryInTheConfigFile() throws {
        let tool = "abathur-restore"
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
        let printed = try box.run(tool, ["--print-config", "--config", config])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertTrue(printed.stdout.contains("backup_dir=\(box.backups)\t# "), printed.stdout)

        XCTAssertEqual(Set(try complete(tool, ["--config", config, ""])), names, "--config FILE on the line")
        XCTAssertEqual(Set(try complete(tool, ["--config", "=", config, "--show", ""])), names, "--config=FILE, split at the =")
        XCTAssertEqual(Set(try complete(tool, ["--config=" + config, ""])), names, "--config=FILE, one word")
        XCTAssertEqual(Set(try complete(tool, [""], env: ["ABATHUR_CONFIG": config])), names, "$ABATHUR_CONFIG")
        XCTAssertEqual(Set(try complete(tool, ["--config", config, ""], env: ["ABATHUR_CONFIG": other])), names,
                       "--config on the line wins over $ABATHUR_CONFIG")
        // The config file comes after the flag and the environment.
        XCTAssertEqual(try complete(tool, ["--config", config, "--backup-dir", elsewhere, ""]), [],
                       "--backup-dir on the line wins over the config file")
        XCTAssertEqual(try complete(tool, ["--config", config, ""], env: ["ABATHUR_BACKUP_DIR": elsewhere]), [],
                       "$ABATHUR_BACKUP_DIR wins over the config file")
        XCTAssertEqual(Set(try complete(tool, ["--config", other, ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), names)
        // A missing or unreadable config file is not an error while completing.
        XCTAssertNoThrow(try complete(tool, ["--config", box.root + "/missing.conf", ""]))
    }

    func testRestoreCompletionOffersFilesForPathsAndSourceOnlyWhereItIsAccepted() throws {
        let tool = "abathur-restore"
        let box = try Sandbox()
        let names = try backupDirectory(box)
        let everything = Set((names + ["abathur_2026-01-02_03-04-05.db.gz.json", "SHA256SUMS", "notes.txt", "copy.db", "subdir"])
            .map { box.backups + "/" + $0 })

        // Options that take a path.
        XCTAssertEqual(Set(try complete(tool, ["--to", box.backups + "/"])), everything, "--to offers files")
        XCTAssertEqual(try complete(tool, ["--to", box.backups + "/co"]), [box.backups + "/copy.db"])
        XCTAssertEqual(try complete(tool, ["--to", "=", box.backups + "/co"]), [box.backups + "/copy.db"])

        // A SOURCE with a '/' is a path: files and directories, whatever their names.
        XCTAssertEqual(Set(try complete(tool, [box.backups + "/"])), everything)
        XCTAssertEqual(Set(try complete(tool, ["--dry-run", "--to", "/tmp/x.db", box.backups + "/ma"])), [box.backups + "/" + names[1]])

        // SOURCE once, and never where the tool takes none.
        let env = ["ABATHUR_BACKUP_DIR": box.backups]
        XCTAssertEqual(Set(try complete(tool, ["--drill", ""], env: env)), Set(names), "--drill takes a SOURCE")
        XCTAssertEqual(try complete(tool, [names[0], ""], env: env), [], "one SOURCE only")
        XCTAssertEqual(try complete(tool, [box.backups + "/copy.db", box.backups + "/"], env: env), [], "one SOURCE only")
        for words in [["--list"], ["--reinit"], ["--before", "2026-11-27"], ["--before=2026-11-27"], ["--show", names[0]]] {
            XCTAssertEqual(try complete(tool, words + [""], env: env), [], "no SOURCE after \(words.joined(separator: " "))")
        }
    }

    /// `--migrate` offers the shipped migrations' names (from the directory the tool reads
    /// them from) and SQL files; after it, no SOURCE.
    func testRestoreCompletionOffersMigrationNamesAndSQLFiles() throws {
        let tool = "abathur-restore"
        let box = try Sandbox()
        let fm = FileManager.default
        let shipped = box.root + "/shipped", files = box.root + "/files"
        for dir in [shipped, files + "/subdir"] { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        for path in [shipped + "/milestone-9-down.sql", shipped + "/milestone-notes.txt", files + "/fix.sql", files + "/notes.txt", files + "/fix.sql.gz"] {
            XCTAssertTrue(fm.createFile(atPath: path, contents: Data()))
        }

        // The names of the *.sql files where the tool looks (ABATHUR_MIGRATIONS_DIR), without .sql.
        let here = ["ABATHUR_MIGRATIONS_DIR": shipped]
        XCTAssertEqual(try complete(tool, ["--migrate", "milestone"], env: here), ["milestone-9-down"])
        XCTAssertEqual(try complete(tool, ["--migrate", "=", "milestone-9"], env: here), ["milestone-9-down"], "--migrate=NAME, split at the =")
        XCTAssertEqual(try complete(tool, ["--migrate=milestone-9"], env: here), ["milestone-9-down"], "--migrate=NAME, one word")
        // Where that directory has none, the names this version ships.
        XCTAssertEqual(try complete(tool, ["--migrate", "milestone"], env: ["ABATHUR_MIGRATIONS_DIR": box.root + "/none"]),
                       ["milestone-2-down", "milestone-3-down"])

        // A path: SQL files, and directories to get to one; nothing else.
        XCTAssertEqual(Set(try complete(tool, ["--migrate", files + "/"], env: here)), [files + "/fix.sql", files + "/subdir"])
        XCTAssertEqual(try complete(tool, ["--migrate", files + "/no"], env: here), [], "not an SQL file")
        XCTAssertEqual(try complete(tool, ["--dry-run", "--migrate", files + "/f"], env: here), [files + "/fix.sql"])

        // --migrate takes no SOURCE, and --expect-tables' value is not guessed.
        let env = here.merging(["ABATHUR_BACKUP_DIR": box.backups]) { a, _ in a }
        _ = try backupDirectory(box)
        for words in [["--migrate", "milestone-9-down"], ["--migrate=milestone-9-down", "--dry-run"], ["--dry-run", "--migrate", files + "/fix.sql"]] {
            XCTAssertEqual(try complete(tool, words + [""], env: env), [], "no SOURCE after \(words.joined(separator: " "))")
        }
        XCTAssertEqual(try complete(tool, ["--migrate", "milestone-9-down", "--expect-tables", ""], env: env), [])
    }

    /// The migrations in the repository's migrations/ (what the package ships) are the ones the
    /// tool lists, the completion offers without a directory to read, and abathur-restore(8)
    /// documents, each by name.
    func testShippedMigrationsAreTheOnesTheDocsAndTheCompletionName() throws {
        let tool = "abathur-restore"
        let directory = Self.repoRoot.appendingPathComponent("migrations").path
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".sql") }
        let names = Set(files.map { String($0.dropLast(4)) })
        XCTAssertFalse(names.isEmpty, "\(directory) holds the shipped migrations (*.sql)")
        guard !names.isEmpty else { return }

        // The tool: an unknown name is a usage error that lists the shipped ones.
        let box = try Sandbox()
        let run = try box.run(tool, ["--migrate", "no-such-migration", "--db", box.db, "--backup-dir", box.backups],
                              env: ["ABATHUR_MIGRATIONS_DIR": directory])
        XCTAssertEqual(run.status, 2, run.stderr)
        let listed = run.stderr.range(of: "(shipped: ").map { run.stderr[$0.upperBound...].prefix { $0 != ")" } }
        XCTAssertEqual(Set((listed ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }), names, run.stderr)

        // The completion, with no directory to read (what it offers besides are the files here).
        let none = ["ABATHUR_MIGRATIONS_DIR": box.root + "/none"]
        let offered = Set(try complete(tool, ["--migrate", ""], env: none))
        XCTAssertTrue(names.isSubset(of: offered), "--migrate <TAB> does not offer \(names.subtracting(offered).sorted())")
        XCTAssertEqual(Set(try complete(tool, ["--migrate", "milestone-"], env: none)), names.filter { $0.hasPrefix("milestone-") })

        // The man page: each one a '.B name' item of MIGRATIONS' "Shipped migrations", and in FILES.
        let page = try Self.manText(tool)
        let documented = Set(Self.tags(Self.section("MIGRATIONS", subsection: "Shipped migrations", in: page))
            .filter { $0.hasPrefix(".B ") }.map { String($0.dropFirst(3)) })
        XCTAssertEqual(documented, names, "abathur-restore(8) MIGRATIONS, 'Shipped migrations'")
        let filesSection = Self.section("FILES", in: page).joined(separator: "\n")
        for name in names {
            XCTAssertTrue(filesSection.contains("/usr/share/abathur-tools/migrations/\(name).sql"), "abathur-restore(8) FILES names \(name).sql")
        }
        // The suite page's runbook rolls each milestone back with a dry run first.
        let runbook = Self.section("THE RUNBOOK", in: try Self.manText("abathur-tools", section: 7))
        for name in names {
            XCTAssertTrue(runbook.contains(".B abathur-restore --migrate \(name) --dry-run"), "abathur-tools(7) THE RUNBOOK: a dry run of \(name)")
            XCTAssertTrue(runbook.contains(".B abathur-restore --migrate \(name)"), "abathur-tools(7) THE RUNBOOK: \(name) for real")
        }
    }

    func testWalfixCompletionOffersTheCheckpointModes() throws {
        let tool = "abathur-walfix"
        let modes = ["passive", "full", "restart", "truncate"]
        XCTAssertEqual(try complete(tool, ["checkpoint", "--mode", ""]), modes)
        XCTAssertEqual(try complete(tool, ["checkpoint", "--mode", "=", "t"]), ["truncate"], "--mode=VALUE, split at the =")
        XCTAssertEqual(try complete(tool, ["checkpoint", "--mode=p"]), ["passive"], "--mode=VALUE, one word")
        // A mode is the option's value, not a subcommand: the options after it are checkpoint's.
        let checkpoint = Self.helpOptions(try help(tool, "checkpoint"))
        XCTAssertEqual(Set(try complete(tool, ["checkpoint", "--mode", "full", "--"])), checkpoint)
        XCTAssertEqual(Set(try complete(tool, ["--busy-timeout", "100", "repair", "--"])), Self.helpOptions(try help(tool, "repair")))
        // Values that are not paths or names are not guessed.
        for option in ["--wait", "--busy-timeout"] {
            XCTAssertEqual(try complete(tool, ["repair", option, ""]), [], option)
        }
    }

    // MARK: (d) exit status

    func testManPagesListEveryExitCode() throws {
        func codes(_ lines: [String]) -> [String] {
            Self.tags(lines).map { $0.replacingOccurrences(of: ".B ", with: "").trimmingCharacters(in: .whitespaces) }
        }
        let shared = Self.section("EXIT STATUS", in: try Self.manText("abathur-backup")).prefix { !$0.hasPrefix(".SS") }
        for (tool, docs) in tools() {
            let page = try Self.manText(tool)
            let table = Array(Self.section("EXIT STATUS", in: page).prefix { !$0.hasPrefix(".SS") })
            XCTAssertEqual(codes(table), (0...9).map(String.init), "\(tool): EXIT STATUS lists 0 to 9, once each, in order")
            // The shared table, word for word as in abathur-backup(8).
            XCTAssertEqual(Array(table.drop { !$0.hasPrefix(".TP") }), Array(shared.drop { !$0.hasPrefix(".TP") }),
                           "\(tool): the exit-code table matches abathur-backup(8)")
            docs.exitSubsections?(page, codes)
        }
    }

    // MARK: (e) configuration

    func testConfigurationDocumentsEachToolsSettingsWithTheirDefaults() throws {
        for (tool, docs) in tools() where !docs.configuration.isEmpty {
            let box = try Sandbox()
            let run = try box.run(tool, ["--print-config"])
            XCTAssertEqual(run.status, 0, run.stderr)
            var defaults: [String: String] = [:]
            for row in run.stdout.split(separator: "\n") {
                let setting = row.components(separatedBy: "\t# ")[0]
                guard let equals = setting.firstIndex(of: "=") else { XCTFail("a --print-config line: \(row)"); continue }
                defaults[String(setting[..<equals])] = String(setting[setting.index(after: equals)...])
            }
            XCTAssertTrue(Set(docs.configuration).isSubset(of: Set(defaults.keys)),
                          "\(tool) --print-config lists its settings: missing \(Set(docs.configuration).subtracting(defaults.keys).sorted())")

            let section = Self.section("CONFIGURATION", in: try Self.manText(tool))
            XCTAssertFalse(section.isEmpty, "\(tool): the man page has a CONFIGURATION section")
            // Each `.TP` item: its tag (`.B key`) and its body up to the next `.TP`.
            var items: [String: String] = [:]
            var index = 0
            while index < section.count {
                if section[index].hasPrefix(".TP"), index + 1 < section.count, section[index + 1].hasPrefix(".B ") {
                    let key = section[index + 1].dropFirst(3).trimmingCharacters(in: .whitespaces)
                    let body = section[(index + 2)...].prefix { !$0.hasPrefix(".TP") && !$0.hasPrefix(".SH") }
                    XCTAssertNil(items[key], "\(tool): \(key) is documented once")
                    items[key] = body.joined(separator: "\n")
                }
                index += 1
            }
            XCTAssertEqual(Set(items.keys).subtracting(defaults.keys).sorted(), [],
                           "\(tool): CONFIGURATION documents keys that --print-config does not know")
            for key in docs.configuration {
                guard let body = items[key] else { XCTFail("\(tool): CONFIGURATION documents \(key) (as a '.TP' / '.B \(key)' item)"); continue }
                let value = defaults[key] ?? "?"
                XCTAssertTrue(body.contains("ABATHUR_" + key.uppercased()), "\(tool) \(key): names its environment variable")
                if value.isEmpty {
                    XCTAssertTrue(body.contains("Default empty"), "\(tool) \(key): the default is empty (--print-config)")
                } else {
                    let stated = body.range(of: "Default", options: .backwards).map { String(body[$0.lowerBound...]) } ?? ""
                    XCTAssertTrue(stated.contains(value), "\(tool) \(key): the default is '\(value)' (--print-config); the page says: \(stated)")
                }
            }
        }
    }

    // MARK: (f) examples

    func testRestoreExamplesAreARunbookWithOptionsTheToolAccepts() throws {
        let tool = "abathur-restore"
        let page = try Self.manText(tool)
        let examples = Self.section("EXAMPLES", in: page)
        XCTAssertFalse(examples.isEmpty, "the man page has an EXAMPLES section")
        let headings = examples.filter { $0.hasPrefix(".SS ") }
        XCTAssertGreaterThanOrEqual(headings.count, 5, "EXAMPLES is a runbook, one .SS per situation: \(headings)")
        let commands = Self.tags(examples).map { $0.hasPrefix(".B ") ? String($0.dropFirst(3)) : $0 }

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
        has("a migration's dry run") { $0.hasPrefix("abathur-restore --migrate ") && $0.contains("--dry-run") }
        has("a shipped migration by name") { $0 == "abathur-restore --migrate milestone-3-down" }
        has("a migration file by its path") { $0.hasPrefix("abathur-restore --migrate /") && $0.contains(".sql") }
        has("going back to the restore point") { $0.hasPrefix("abathur-restore pre-migrate_") }

        // Every option an abathur-restore example uses is one the tool accepts.
        let accepted = Self.helpOptions(try help(tool))
        for command in commands where command.contains("abathur-restore") {
            var invocation = command[command.range(of: "abathur-restore", options: .backwards)!.upperBound...]
            if let pipe = invocation.range(of: "|") { invocation = invocation[..<pipe.lowerBound] }
            let used = Self.longOptions(String(invocation))
            XCTAssertTrue(used.isSubset(of: accepted), "\(command): \(used.subtracting(accepted).sorted()) not in --help")
        }
    }

    /// abathur-walfix(8)'s EXAMPLES: the runbook's answer to a damaged WAL, never `rm` of a
    /// `-wal` as a command, and only options the subcommand they name accepts.
    func testWalfixExamplesAreARunbookWithOptionsTheToolAccepts() throws {
        let tool = "abathur-walfix"
        let examples = Self.section("EXAMPLES", in: try Self.manText(tool))
        XCTAssertFalse(examples.isEmpty, "the man page has an EXAMPLES section")
        let commands = Self.tags(examples).map { $0.hasPrefix(".B ") ? String($0.dropFirst(3)) : $0 }
        func has(_ what: String, _ test: (String) -> Bool) {
            XCTAssertTrue(commands.contains(where: test), "EXAMPLES: \(what)")
        }
        has("a plain inspect") { $0 == tool }
        has("a checkpoint") { $0.hasPrefix("\(tool) checkpoint") }
        has("a repair") { $0 == "\(tool) repair" }
        has("a repair beyond the break") { $0.hasPrefix("\(tool) repair") && $0.contains("--beyond-break") }
        has("a repair that accepts the loss") { $0.hasPrefix("\(tool) repair") && $0.contains("--accept-loss") }
        XCTAssertFalse(commands.contains { $0.hasPrefix("rm ") }, "EXAMPLES never offers 'rm' as a command: \(commands)")
        XCTAssertTrue(examples.joined(separator: "\n").contains("Never do that"), "EXAMPLES says why never 'rm abathur.db-wal'")

        var accepted: [String: Set<String>] = [:]
        for subcommand in Self.docs[tool]!.subcommands { accepted[subcommand] = Self.helpOptions(try help(tool, subcommand)) }
        for command in commands where command.hasPrefix(tool) {
            var invocation = command.dropFirst(tool.count)
            if let pipe = invocation.range(of: "|") { invocation = invocation[..<pipe.lowerBound] }
            let first = invocation.split(separator: " ").first.map(String.init) ?? ""
            let subcommand = accepted[first] == nil ? "inspect" : first
            let used = Self.longOptions(String(invocation))
            XCTAssertTrue(used.isSubset(of: accepted[subcommand]!), "\(command): \(used.subtracting(accepted[subcommand]!).sorted()) not in '\(tool) help \(subcommand)'")
        }
    }

    /// abathur-diskcheck(8)'s EXAMPLES: the runbook's answer to a full disk done safely (a
    /// report, a plan, a fix, a fix to a target), never `find ... -delete` as a command, and
    /// only options the tool accepts.
    func testDiskcheckExamplesAreARunbookWithOptionsTheToolAccepts() throws {
        let tool = "abathur-diskcheck"
        let examples = Self.section("EXAMPLES", in: try Self.manText(tool))
        XCTAssertFalse(examples.isEmpty, "the man page has an EXAMPLES section")
        let commands = Self.tags(examples).map { $0.hasPrefix(".B ") ? String($0.dropFirst(3)) : $0 }
        func has(_ what: String, _ test: (String) -> Bool) {
            XCTAssertTrue(commands.contains(where: test), "EXAMPLES: \(what)")
        }
        has("a plain report") { $0 == tool }
        has("a dry run") { $0 == "\(tool) --dry-run" }
        has("a fix") { $0 == "\(tool) --fix" }
        has("a fix to a target") { $0.hasPrefix("\(tool) --fix") && $0.contains("--target ") }
        has("a monitoring line") { $0.contains("\(tool) --nagios") }
        XCTAssertFalse(commands.contains { $0.contains("find ") || $0.contains("-delete") || $0.hasPrefix("rm ") },
                       "EXAMPLES never offers 'find -delete' or 'rm' as a command: \(commands)")
        XCTAssertTrue(examples.joined(separator: "\n").contains("Never run that"), "EXAMPLES says why never 'find -mtime +7 -delete'")

        let accepted = Self.helpOptions(try help(tool))
        for command in commands where command.contains(tool) {
            var invocation = command[command.range(of: tool, options: .backwards)!.upperBound...]
            if let pipe = invocation.range(of: "|") { invocation = invocation[..<pipe.lowerBound] }
            let used = Self.longOptions(String(invocation))
            XCTAssertTrue(used.isSubset(of: accepted), "\(command): \(used.subtracting(accepted).sorted()) not in --help")
        }
    }
}
