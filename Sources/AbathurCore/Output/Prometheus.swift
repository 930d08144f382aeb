/// node_exporter textfile metrics, written atomically (temp file, fsync, rename, fsync the
/// directory) so the collector never reads half a file, and mode 0644: node_exporter runs as
/// its own user (Debian's `prometheus`) and must be able to read it.
public struct PrometheusMetrics: Sendable {
    public struct Sample: Sendable {
        var name: String
        var help: String
        var type: String
        var labels: [(String, String)]
        var value: Double
    }

    private var samples: [Sample] = []

    public init() {}

    public mutating func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        samples.append(Sample(name: name, help: help, type: "gauge", labels: labels, value: value))
    }

    /// The text exposition format: each metric family once, its HELP and TYPE lines and then
    /// all of its samples together (a family split in two is rejected by the parser), in the
    /// order families were first added.
    public func rendered() -> String {
        var families: [String] = []
        var byName: [String: [Sample]] = [:]
        for sample in samples {
            if byName[sample.name] == nil { families.append(sample.name) }
            byName[sample.name, default: []].append(sample)
        }
        var text = ""
        for name in families {
            let group = byName[name]!
            text += "# HELP \(name) \(escapeHelp(group[0].help))\n# TYPE \(name) \(group[0].type)\n"
            for sample in group {
                let labels = sample.labels.isEmpty ? "" : "{" + sample.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
                text += "\(name)\(labels) \(format(sample.value))\n"
            }
        }
        return text
    }

    func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// HELP text escapes backslash and newline; label values also the double quote. Scalar
    /// by scalar: "\r\n" is one Character and would slip past a Character comparison.
    func escapeHelp(_ text: String) -> String { escape(text, quote: false) }

    func escape(_ text: String, quote: Bool = true) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"" where quote: out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    public func write(to path: String) throws {
        try SafeFiles.writeAtomically(Array(rendered().utf8), to: path, mode: 0o644)
    }
}
