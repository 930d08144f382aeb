import Foundation
import XCTest
@testable import AbathurTestSupport

/// etc/abathur.conf (installed as /etc/abathur/abathur.conf) and the CONFIGURATION section of
/// man/abathur-backup.8 against the settings the built binary knows: the test fails when a
/// key is added to the code and not to the shipped config file or the man page, when a
/// default changes in one place only, or when a key is documented that no longer exists.
final class ConfigFileDriftTests: XCTestCase {
    static var configFile: String { DocsDriftTests.repoRoot.appendingPathComponent("etc/abathur.conf").path }

    /// A `# key = default` line: a setting shown commented out with its default.
    static let commentedSetting = try! NSRegularExpression(pattern: #"^# ([a-z][a-z0-9_]*) =(?: (.*))?$"#)
    /// A `key = value` line: a setting that is not commented out.
    static let activeSetting = try! NSRegularExpression(pattern: #"^\s*[A-Za-z][A-Za-z0-9_]*\s*="#)

    /// `abathur-backup --print-config` with a clean environment and an empty config file:
    /// every key, in order, with its built-in default.
    func printedDefaults(file: StaticString = #filePath, line: UInt = #line) throws -> [(key: String, value: String)] {
        let box = try Sandbox()
        let run = try box.run("abathur-backup", ["--print-config"])
        XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
        XCTAssertEqual(run.stderr, "", file: file, line: line)
        var settings: [(key: String, value: String)] = []
        for row in run.stdout.split(separator: "\n") {
            // key=value<TAB># source
            let parts = row.components(separatedBy: "\t# ")
            XCTAssertEqual(parts.count, 2, "a --print-config line: \(row)", file: file, line: line)
            XCTAssertEqual(parts.last, "default", "with nothing set, \(row) comes from the default", file: file, line: line)
            guard let equals = parts[0].firstIndex(of: "=") else {
                XCTFail("a --print-config line: \(row)", file: file, line: line)
                continue
            }
            settings.append((String(parts[0][..<equals]), String(parts[0][parts[0].index(after: equals)...])))
        }
        XCTAssertFalse(settings.isEmpty, "--print-config lists settings", file: file, line: line)
        return settings
    }

    /// The `# key = default` lines of etc/abathur.conf, in order, with their line numbers.
    static func commentedSettings() throws -> [(key: String, value: String, line: Int)] {
        let text = try String(contentsOfFile: configFile, encoding: .utf8)
        var result: [(key: String, value: String, line: Int)] = []
        for (index, line) in text.components(separatedBy: "\n").enumerated() {
            let range = NSRange(line.startIndex..., in: line)
            guard let match = commentedSetting.firstMatch(in: line, range: range) else { continue }
            let key = String(line[Range(match.range(at: 1), in: line)!])
            let value = Range(match.range(at: 2), in: line).map { String(line[$0]) } ?? ""
            result.append((key, value.trimmingCharacters(in: .whitespaces), index + 1))
        }
        return result
    }

    // MARK: etc/abathur.conf

    func testConfigFileShowsEverySettingOnceWithItsDefault() throws {
        let printed = try printedDefaults()
        let inFile = try Self.commentedSettings()
        let known = Set(printed.map(\.key))

        for (key, value) in printed {
            let lines = inFile.filter { $0.key == key }
            XCTAssertEqual(lines.count, 1,
                           "etc/abathur.conf shows '# \(key) = \(value)' exactly once (found on lines \(lines.map(\.line)))")
            if let entry = lines.first {
                XCTAssertEqual(entry.value, value, "etc/abathur.conf:\(entry.line): the default of \(key) is '\(value)' (--print-config)")
            }
        }
        let stale = inFile.filter { !known.contains($0.key) }
        XCTAssertEqual(stale.map { "\($0.line): \($0.key)" }, [], "etc/abathur.conf shows keys that --print-config does not know")
        XCTAssertEqual(inFile.map(\.key), printed.map(\.key).filter { key in inFile.contains { $0.key == key } },
                       "etc/abathur.conf lists the settings in --print-config's order")

        // Every setting is commented out: the shipped file changes nothing.
        let text = try String(contentsOfFile: Self.configFile, encoding: .utf8)
        let active = text.components(separatedBy: "\n").enumerated().filter { _, line in
            Self.activeSetting.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
        }
        XCTAssertEqual(active.map { "\($0.offset + 1): \($0.element)" }, [], "etc/abathur.conf sets nothing")
    }

    func testConfigFileLoadsAndItsDefaultsParse() throws {
        let box = try Sandbox()
        let printed = try printedDefaults()

        // As shipped: accepted, and every setting still comes from the default.
        let shipped = try box.run("abathur-backup", ["--print-config", "--config", Self.configFile])
        XCTAssertEqual(shipped.status, 0, shipped.stderr)
        XCTAssertEqual(shipped.stderr, "")
        for row in shipped.stdout.split(separator: "\n") {
            XCTAssertTrue(row.hasSuffix("\t# default"), "etc/abathur.conf as shipped sets nothing: \(row)")
        }

        // With every '# key = default' line uncommented: accepted, every key read from the
        // file, and the values are the defaults.
        let uncommented = box.root + "/uncommented.conf"
        let lines = try Self.commentedSettings().map { "\($0.key) = \($0.value)" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: uncommented, atomically: true, encoding: .utf8)
        let run = try box.run("abathur-backup", ["--print-config", "--config", uncommented])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        let rows = run.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(rows.count, printed.count)
        for ((key, value), row) in zip(printed, rows) {
            XCTAssertTrue(row.hasPrefix("\(key)=\(value)\t# "), "uncommented, \(key) keeps its default: \(row)")
            XCTAssertFalse(row.hasSuffix("\t# default"), "uncommented, \(key) comes from the file: \(row)")
        }
    }

    // MARK: man/abathur-backup.8

    func testEverySettingIsInTheManPage() throws {
        let printed = try printedDefaults()
        let page = try DocsDriftTests.manText()
        let section = DocsDriftTests.section("CONFIGURATION", in: page)
        XCTAssertFalse(section.isEmpty, "man/abathur-backup.8 has a CONFIGURATION section")
        let documented = DocsDriftTests.tags(section).map {
            $0.replacingOccurrences(of: ".B ", with: "").trimmingCharacters(in: .whitespaces)
        }
        for (key, _) in printed {
            XCTAssertEqual(documented.filter { $0 == key }.count, 1,
                           "man/abathur-backup.8 CONFIGURATION documents \(key) exactly once (as a '.TP' / '.B \(key)' item)")
        }
        let known = Set(printed.map(\.key))
        XCTAssertEqual(documented.filter { !known.contains($0) }, [],
                       "man/abathur-backup.8 CONFIGURATION documents keys that --print-config does not know")
    }
}
