import AbathurCore
import XCTest

/// Each setting declared once: its range, parser, default and flag (issue 10, point 8).
final class SettingDeclarationTests: XCTestCase {
    func settings(_ environment: [String: String], flags: [SettingKey: String] = [:]) throws -> Settings {
        try Settings(flags: flags, configPath: "/dev/null", environment: environment)
    }

    func problem(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func testEachKeyIsDeclaredOnceWithItsFlag() {
        let names = SettingKey.all.map(\.name)
        XCTAssertEqual(names.count, Set(names).count, "every key once")
        let flags = SettingKey.all.compactMap(\.flag)
        XCTAssertEqual(flags.count, Set(flags).count, "every flag overrides one key")
        XCTAssertEqual(Setting.busyTimeoutMs.key.flag, "busy-timeout")
        XCTAssertTrue(names.contains("safety_keep") && names.contains("safety_max_age"))
    }

    func testTheDeclaredRangeIsTheOnlyRange() throws {
        XCTAssertEqual(try settings([:]).value(.busyTimeoutMs), 5000)
        XCTAssertEqual(try settings(["ABATHUR_BUSY_TIMEOUT_MS": "3600000"]).value(.busyTimeoutMs), 3_600_000)
        let tooLong = problem { _ = try self.settings(["ABATHUR_BUSY_TIMEOUT_MS": "3600001"]).value(.busyTimeoutMs) }
        XCTAssertTrue(tooLong.contains("busy_timeout_ms=\"3600001\" (from environment ABATHUR_BUSY_TIMEOUT_MS): expected a whole number from 0 to 3600000"), tooLong)
        XCTAssertEqual(try settings(["ABATHUR_MAX_ERRORS": "100000000"]).value(.maxErrors), 100_000_000)
        let tooMany = problem { _ = try self.settings(["ABATHUR_MAX_ERRORS": "100000001"]).value(.maxErrors) }
        XCTAssertTrue(tooMany.contains("expected a whole number from 1 to 100000000"), tooMany)
    }

    func testFlagsAreNamedAsTheirKeyDeclares() throws {
        let given = try settings([:], flags: [Setting.busyTimeoutMs.key: "7", Setting.quickCheck.key: "yes"])
        XCTAssertEqual(given[.busyTimeoutMs].source, .flag("--busy-timeout"))
        XCTAssertEqual(given[.quickCheck].source, .flag("--quick"))
        XCTAssertEqual(try given.value(.busyTimeoutMs), 7)
        XCTAssertEqual(try given.value(.quickCheck), true)
    }

    func testTypedValues() throws {
        let s = try settings(["ABATHUR_SERVICES": "a, b\tc", "ABATHUR_HEALTH_COMMAND": "curl -fsS http://x/", "ABATHUR_EXPECT_USER_VERSION": "",
                              "ABATHUR_SAFETY_MAX_AGE": "2w"])
        XCTAssertEqual(try s.value(.services), ["a", "b", "c"])
        XCTAssertEqual(try s.value(.healthCommand), ["curl", "-fsS", "http://x/"])
        XCTAssertNil(try s.value(.expectUserVersion))
        XCTAssertEqual(try s.value(.safetyMaxAge), 14 * 86400)
        XCTAssertEqual(try s.value(.safetyKeep), 3)
        XCTAssertEqual(try s.value(.lockWait), 0)
        let quoted = problem { _ = try self.settings(["ABATHUR_INIT_COMMAND": "sh -c 'x'"]).value(.initCommand) }
        XCTAssertTrue(quoted.contains("quotes are not supported"), quoted)
        let zero = problem { _ = try self.settings(["ABATHUR_HEALTH_TIMEOUT": "0s"]).value(.healthTimeout) }
        XCTAssertTrue(zero.contains("expected more than 0s and at most 1h"), zero)
        let garbage = problem { _ = try self.settings(["ABATHUR_HEALTH_TIMEOUT": "soon"]).value(.healthTimeout) }
        XCTAssertTrue(garbage.contains("expected a duration such as 90s"), garbage)
        let long = problem { _ = try self.settings(["ABATHUR_HEALTH_INTERVAL": "2h"]).value(.healthInterval) }
        XCTAssertTrue(long.contains("expected at most 1h"), long)
    }
}
