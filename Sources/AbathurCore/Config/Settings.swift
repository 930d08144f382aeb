#if canImport(Glibc)
import Glibc
#endif

/// Where a setting's effective value came from.
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    case flag(String)
    case environment(String)
    case file(String, line: Int)
    case defaultValue

    public var description: String {
        switch self {
        case .flag(let name): return "flag \(name)"
        case .environment(let name): return "environment \(name)"
        case .file(let path, let line): return "\(path):\(line)"
        case .defaultValue: return "default"
        }
    }
}

/// The effective configuration: flag > environment > config file > default.
public struct Settings: Sendable {
    public static let defaultConfigPath = "/etc/abathur/abathur.conf"

    public struct Value: Sendable {
        public var text: String
        public var source: SettingSource
    }

    public private(set) var values: [SettingKey: Value] = [:]
    /// The config file that was read, if any.
    public private(set) var configFile: String?

    /// `flags` maps keys to what the command line said, with the flag's spelling.
    public init(flags: [SettingKey: (flag: String, value: String)], configPath: String?,
                environment: [String: String] = Settings.processEnvironment()) throws {
        var fileValues: [String: (String, Int)] = [:]
        var path = configPath
        if path == nil, let fromEnv = environment["ABATHUR_CONFIG"], !fromEnv.isEmpty { path = fromEnv }
        if let path {
            fileValues = try Settings.parseFile(path, required: true)
            configFile = path
        } else if try FileStatus.of(Settings.defaultConfigPath) != nil {
            fileValues = try Settings.parseFile(Settings.defaultConfigPath, required: false)
            configFile = Settings.defaultConfigPath
        }
        for key in SettingKey.all {
            if let given = flags[key] {
                values[key] = Value(text: given.value, source: .flag(given.flag))
            } else if let text = environment[key.environment] {
                values[key] = Value(text: text, source: .environment(key.environment))
            } else if let (text, line) = fileValues[key.name] {
                values[key] = Value(text: text, source: .file(configFile!, line: line))
            } else {
                values[key] = Value(text: key.defaultValue, source: .defaultValue)
            }
        }
    }

    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    /// `key = value` lines; `#` starts a comment line; blank lines are fine; a value may be
    /// wrapped in double quotes. An unknown key, a malformed line or a line that is not UTF-8
    /// is a usage error that names the file and the line; what it quotes from the file is
    /// escaped (`\x1b`, `\xff`), never echoed raw to the terminal.
    static func parseFile(_ path: String, required: Bool) throws -> [String: (String, Int)] {
        // `--config /dev/null` is the usual way to say "no config file".
        if path == "/dev/null" { return [:] }
        let bytes: [UInt8]
        do {
            bytes = try TextFile.readRegular(path)
        } catch {
            if !required, (error as? AbathurError)?.kind == .usage { return [:] }
            throw error
        }
        let known = Set(SettingKey.all.map(\.name))
        var result: [String: (String, Int)] = [:]
        for (index, rawBytes) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let location = "\(path):\(index + 1)"
            guard let rawLine = String(validating: rawBytes, as: UTF8.self) else {
                // A comment may be in any encoding; a setting must be text we can use as is.
                let start = rawBytes.firstIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
                if let start, rawBytes[start] == UInt8(ascii: "#") { continue }
                throw AbathurError(.usage, location, "not valid UTF-8: \"\(Escape.bytes(rawBytes))\"")
            }
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw AbathurError(.usage, location, "expected key = value, got \"\(Escape.controlCharacters(line))\"")
            }
            let key = String(line[..<equals]).trimmingWhitespace()
            var value = String(line[line.index(after: equals)...]).trimmingWhitespace()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            guard known.contains(key) else {
                throw AbathurError(.usage, location, "unknown setting \"\(Escape.controlCharacters(key))\"")
            }
            result[key] = (value, index + 1)
        }
        return result
    }

    public subscript(key: SettingKey) -> Value { values[key]! }

    public func string(_ key: SettingKey) -> String { self[key].text }

    public func integer(_ key: SettingKey, in range: ClosedRange<Int>) throws -> Int {
        let value = self[key]
        guard let number = Int(value.text), range.contains(number) else {
            throw invalid(key, "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// A whole number, or nil when the setting is empty (meaning "not checked").
    public func optionalInteger(_ key: SettingKey) throws -> Int64? {
        let text = self[key].text
        if text.isEmpty { return nil }
        guard let number = Int64(text) else { throw invalid(key, "expected a whole number, or nothing") }
        return number
    }

    /// A fraction from 0 to 1.
    public func fraction(_ key: SettingKey) throws -> Double {
        guard let number = Double(self[key].text), number >= 0, number <= 1 else {
            throw invalid(key, "expected a fraction from 0 to 1, such as 0.5")
        }
        return number
    }

    public func seconds(_ key: SettingKey) throws -> Double {
        guard let seconds = Duration.parse(self[key].text) else {
            throw invalid(key, "expected a duration such as 90s, 15m, 26h or 7d")
        }
        return seconds
    }

    public func boolean(_ key: SettingKey) throws -> Bool {
        switch self[key].text.lowercased() {
        case "yes", "true", "1", "on": return true
        case "no", "false", "0", "off", "": return false
        default: throw invalid(key, "expected yes or no")
        }
    }

    public func list(_ key: SettingKey) -> [String] {
        self[key].text.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    public func invalid(_ key: SettingKey, _ problem: String) -> AbathurError {
        let value = self[key]
        return AbathurError(.usage, nil, "\(key.name)=\"\(Escape.controlCharacters(value.text))\" (from \(value.source)): \(problem)")
    }
}

/// Durations as operators write them: `90s`, `15m`, `26h`, `7d`, `2w`, or plain seconds.
public enum Duration {
    public static func parse(_ text: String) -> Double? {
        let trimmed = text.trimmingWhitespace().lowercased()
        guard let last = trimmed.last else { return nil }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800]
        // Finite and at most ten years: "inf" or 1e300 would trap where seconds become integers.
        let seconds: Double
        if let unit = units[last] {
            guard let number = Double(trimmed.dropLast()) else { return nil }
            seconds = number * unit
        } else {
            guard let number = Double(trimmed) else { return nil }
            seconds = number
        }
        guard seconds.isFinite, seconds >= 0, seconds <= 10 * 366 * 86400 else { return nil }
        return seconds
    }

    /// `3d 4h`, `2h 5m`, `42s`: for humans reading an age.
    public static func describe(_ seconds: Double) -> String {
        let s = Int64(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m \(s % 60)s" }
        if s < 86400 { return "\(s / 3600)h \(s % 3600 / 60)m" }
        return "\(s / 86400)d \(s % 86400 / 3600)h"
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
