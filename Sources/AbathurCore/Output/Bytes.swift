/// Sizes for humans: `512 B`, `12.3 KiB`, `1.0 GiB`.
public enum Bytes {
    public static func describe(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }
}

extension Bytes {
    /// `1048576`, `512KiB`, `512MiB`, `1GiB`, `2 GiB`, `1.5G`, `100MB`: powers of 1024 (K, KB
    /// and KiB all mean 1024, as `df -h` reads them); nil when it is not a size.
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingWhitespace()
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        guard !digits.isEmpty, let value = Double(digits), value >= 0 else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingWhitespace().uppercased()
        let exponents = ["": 0, "B": 0, "K": 1, "KB": 1, "KIB": 1, "M": 2, "MB": 2, "MIB": 2, "G": 3, "GB": 3, "GIB": 3, "T": 4, "TB": 4, "TIB": 4]
        guard let exponent = exponents[unit] else { return nil }
        let power = Double(Int64(1) << (10 * exponent))
        let bytes = value * power
        guard bytes < 9.0e18 else { return nil }
        return Int64(bytes.rounded())
    }
}
