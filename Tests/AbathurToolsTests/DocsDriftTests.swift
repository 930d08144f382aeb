import Foundation
import XCTest

/// The hand-written docs (man/abathur-backup.8, completions/abathur-backup) against what the
/// built binary prints for `--help`: the test fails when an option is added, renamed or
/// removed in one place and not the other (STYLE.md, "Man pages").
final class DocsDriftTests: XCTestCase {
    static let subcommands = ["take", "status", "verify", "prune"]

    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var manPage: String { repoRoot.appendingPathComponent("man/abathur-backup.8").path }
    static var completion: String { repoRoot.appendingPathComponent("completions/abathur-backup").path }

    // MARK: help

    /// `abathur-backup --help` (nil) or `abathur-backup help SUB`, checked to succeed quietly.
    func help(_ subcommand: String?, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let args = subcommand.map { ["help", $0] } ?? ["--help"]
        let run = try Sandbox.execute(Binaries.tool("abathur-backup"), args)
        XCTAssertEqual(run.status, 0, "abathur-backup \(args.joined(separator: " ")): \(run.stderr)", file: file, line: line)
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

    /// The page's source with roff escapes for hyphens, fonts and joins removed.
    static func manText() throws -> String {
        var text = try String(contentsOfFile: manPage, encoding: .utf8)
        for (escape, plain) in [(#"\-"#, "-"), (#"\c"#, ""), (#"\&"#, ""), (#"\fB"#, ""), (#"\fI"#, ""), (#"\fR"#, ""), (#"\fP"#, "")] {
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

    // MARK: (a) options in --help and in the man page

    func testEveryHelpOptionIsInTheManPageAndBack() throws {
        let page = try Self.manText()
        let options = Self.section("OPTIONS", in: page)
        XCTAssertFalse(options.isEmpty, "the man page has an OPTIONS section")
        let common = Self.longOptions(Self.tags(Self.section("OPTIONS", subsection: "Common options", in: page)).joined(separator: "\n"))
        XCTAssertFalse(common.isEmpty, "OPTIONS has a 'Common options' subsection")

        var everyHelpOption = Set<String>()
        let root = try help(nil)
        let rootOptions = Self.helpOptions(root)
        XCTAssertTrue(rootOptions.isSubset(of: common),
                      "options of 'abathur-backup --help' missing from the man page's common options: \(rootOptions.subtracting(common).sorted())")
        everyHelpOption.formUnion(rootOptions)

        XCTAssertEqual(Set(Self.listedSubcommands(root)), Set(Self.subcommands), "the subcommands this test and the docs know")
        let documentedSubcommands = Set(Self.tags(Self.section("SUBCOMMANDS", in: page)).compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) })
        XCTAssertTrue(Set(Self.subcommands).isSubset(of: documentedSubcommands),
                      "subcommands missing from the man page's SUBCOMMANDS: \(Set(Self.subcommands).subtracting(documentedSubcommands).sorted())")
        let synopsis = Self.section("SYNOPSIS", in: page).joined(separator: "\n")
        for subcommand in Self.subcommands {
            XCTAssertTrue(synopsis.contains(subcommand), "SYNOPSIS shows \(subcommand)")
        }

        for subcommand in Self.subcommands {
            let text = try help(subcommand)
            let listed = Self.helpOptions(text)
            XCTAssertFalse(listed.isEmpty, "help \(subcommand) lists options")
            // `SUB --help` and `help SUB` are the same text.
            let flagForm = try Sandbox.execute(Binaries.tool("abathur-backup"), [subcommand, "--help"])
            XCTAssertEqual(flagForm.status, 0, flagForm.stderr)
            XCTAssertEqual(Self.helpOptions(flagForm.stdout), listed, "\(subcommand) --help and help \(subcommand)")

            let own = Self.longOptions(Self.tags(Self.section("OPTIONS", subsection: "\(subcommand) options", in: page)).joined(separator: "\n"))
            let documented = common.union(own)
            XCTAssertTrue(listed.isSubset(of: documented),
                          "options of 'abathur-backup help \(subcommand)' missing from the man page (common options or '\(subcommand) options'): \(listed.subtracting(documented).sorted())")
            everyHelpOption.formUnion(listed)
        }

        let inPage = Self.longOptions(options.joined(separator: "\n"))
        XCTAssertTrue(inPage.isSubset(of: everyHelpOption),
                      "options in the man page's OPTIONS that no --help lists: \(inPage.subtracting(everyHelpOption).sorted())")
    }

    // MARK: (b) man --warnings

    func testManPageFormatsWithoutWarnings() throws {
        try ManPage.assertFormatsWithoutWarnings(Self.manPage, naming: "abathur-backup")
    }

    // MARK: (c) bash completion

    func testCompletionLoads() throws {
        try Completion.assertLoads(tool: "abathur-backup", file: Self.completion)
    }

    func complete(_ words: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        try Completion.complete(tool: "abathur-backup", file: Self.completion, words, env: env, file: file, line: line)
    }

    func testCompletionOffersSubcommandsAndExactlyTheOptionsOfEach() throws {
        let root = try help(nil)
        let subcommands = Set(Self.listedSubcommands(root))
        let offered = Set(try complete(["abathur-backup", ""]))
        XCTAssertTrue(subcommands.isSubset(of: offered), "subcommands not completed: \(subcommands.subtracting(offered).sorted())")
        XCTAssertTrue(offered.subtracting(subcommands).isSubset(of: ["help"]), "completed but not a subcommand: \(offered.subtracting(subcommands).sorted())")
        XCTAssertEqual(Set(try complete(["abathur-backup", "help", ""])), subcommands)

        var helpOptions: [String: Set<String>] = [:]
        for subcommand in Self.subcommands {
            let listed = Self.helpOptions(try help(subcommand))
            helpOptions[subcommand] = listed
            let completed = try complete(["abathur-backup", subcommand, "--"])
            XCTAssertEqual(completed.count, Set(completed).count, "\(subcommand): no option offered twice")
            XCTAssertEqual(Set(completed), listed,
                           "abathur-backup \(subcommand) --<TAB> against 'abathur-backup help \(subcommand)': "
                           + "not completed \(listed.subtracting(completed).sorted()), not in help \(Set(completed).subtracting(listed).sorted())")
            // The subcommand is found behind common options and their values too.
            let behind = try complete(["abathur-backup", "--db", "/tmp/x.db", "--backup-dir", "/tmp", subcommand, "--"])
            XCTAssertEqual(Set(behind), listed, "abathur-backup --db X --backup-dir Y \(subcommand) --<TAB>")
        }

        // Without a subcommand the tool runs `take`: its own options and take's.
        let rootOptions = Self.helpOptions(root)
        let atRoot = Set(try complete(["abathur-backup", "--"]))
        XCTAssertTrue(rootOptions.isSubset(of: atRoot), "root options not completed: \(rootOptions.subtracting(atRoot).sorted())")
        let allowed = rootOptions.union(helpOptions["take"] ?? [])
        XCTAssertTrue(atRoot.isSubset(of: allowed), "completed at the root but accepted by neither the root nor take: \(atRoot.subtracting(allowed).sorted())")
    }

    func testCompletionOffersPathsAndBackupNames() throws {
        let box = try Sandbox()
        let fm = FileManager.default
        try fm.createDirectory(atPath: box.backups + "/subdir", withIntermediateDirectories: true)
        let names = ["abathur_2026-01-02_03-04-05.db.gz", "manual_20260102_030405.db.gz", "pre-upgrade_20260103_000000.db.gz"]
        for name in names + ["abathur_2026-01-02_03-04-05.db.gz.json", "SHA256SUMS", "notes.txt"] {
            XCTAssertTrue(fm.createFile(atPath: box.backups + "/" + name, contents: Data()))
        }

        XCTAssertEqual(Set(try complete(["abathur-backup", "--backup-dir", box.backups, "verify", ""])), Set(names))
        XCTAssertEqual(Set(try complete(["abathur-backup", "verify", "--backup-dir", box.backups, ""])), Set(names))
        XCTAssertEqual(try complete(["abathur-backup", "verify", "--backup-dir", box.backups, "man"]), ["manual_20260102_030405.db.gz"])
        XCTAssertEqual(Set(try complete(["abathur-backup", "verify", ""], env: ["ABATHUR_BACKUP_DIR": box.backups])), Set(names))
        // --backup-dir on the line wins over the environment.
        XCTAssertEqual(try complete(["abathur-backup", "verify", "--backup-dir", box.root + "/live", ""], env: ["ABATHUR_BACKUP_DIR": box.backups]), [])

        XCTAssertEqual(try complete(["abathur-backup", "--backup-dir", box.backups + "/sub"]), [box.backups + "/subdir"])
        XCTAssertEqual(try complete(["abathur-backup", "status", "--backup-dir", box.backups + "/no"]), [], "--backup-dir offers directories only")
        for option in ["--db", "--config", "--prometheus"] {
            XCTAssertEqual(try complete(["abathur-backup", "take", option, box.backups + "/no"]), [box.backups + "/notes.txt"], option)
        }
    }

    // MARK: (d) exit status

    func testManPageListsEveryExitCode() throws {
        let page = try Self.manText()
        let codes = Self.tags(Self.section("EXIT STATUS", in: page)).map {
            $0.replacingOccurrences(of: ".B ", with: "").trimmingCharacters(in: .whitespaces)
        }
        XCTAssertEqual(codes, (0...9).map(String.init), "EXIT STATUS lists 0 to 9, once each, in order")
    }
}
