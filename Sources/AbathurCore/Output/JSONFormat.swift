import FoundationEssentials

/// How the JSON the tools write looks, whatever the document (a `--json` result, a manifest,
/// an incident record): pretty-printed, keys sorted, snake_case names, one trailing newline.
public enum JSONFormat {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return Array(try encoder.encode(value)) + [UInt8(ascii: "\n")]
    }
}
