import Foundation

extension FileHandle {
    /// Reads until a newline (a pipe may deliver a line in pieces) or the end; returns what
    /// came, newline included. How a test waits for a helper process to say it is ready.
    func readLine() -> String {
        var said = Data()
        while !said.contains(UInt8(ascii: "\n")) {
            let more = availableData
            guard !more.isEmpty else { break }
            said += more
        }
        return String(decoding: said, as: UTF8.self)
    }
}
