@testable import AbathurCore
import Foundation
import XCTest

/// The small pieces behind issue 9's hygiene items: the SQLite URI, escaping untrusted text,
/// the textfile format.
final class HygieneUnitTests: XCTestCase {
    func testURIPercentEncodesEveryByteButUnreservedAndSlash() {
        XCTAssertEqual(Connection.uri(for: "/var/lib/abathur/abathur.db"), "file:///var/lib/abathur/abathur.db")
        XCTAssertEqual(Connection.uri(for: "/tmp/ü/a b%41?x#y\nz.db"),
                       "file:///tmp/%C3%BC/a%20b%2541%3Fx%23y%0Az.db")
        XCTAssertEqual(Connection.uri(for: "//host/x.db"), "file:////host/x.db", "never an authority")
        XCTAssertEqual(Connection.uri(for: "/a-b_c.d~e"), "file:///a-b_c.d~e")
    }

    func testControlCharactersAreEscaped() {
        XCTAssertEqual(Escape.controlCharacters("plain ü path\\x"), "plain ü path\\x")
        XCTAssertEqual(Escape.controlCharacters("a\nb\tc\rd\u{1b}[31m\u{07}\u{7f}"), #"a\nb\tc\rd\x1b[31m\x07\x7f"#)
        XCTAssertEqual(Escape.controlCharacters("\u{9b}2J\u{2028}\u{202e}"), #"\u{9B}2J\u{2028}\u{202E}"#)
        XCTAssertEqual(Escape.controlCharacters("\r\n"), #"\r\n"#, "a CRLF grapheme is two escapes")
        XCTAssertEqual(Escape.controlCharacters("k=v\t# x\n", keepingTabs: true), #"k=v"# + "\t" + #"# x\n"#)
    }

    func testInvalidUTF8BytesAreEscaped() {
        XCTAssertEqual(Escape.bytes(Array("ok ü".utf8)), "ok ü")
        XCTAssertEqual(Escape.bytes([0x61, 0xFF, 0x62, 0xC3]), #"a\xffb\xc3"#)
        XCTAssertEqual(Escape.bytes([0xE2, 0x82, 0x41, 0x1B]), #"\xe2\x82A\x1b"#)
        XCTAssertEqual(Escape.bytes([0xC3, 0xBC, 0x80, 0x0A]), #"ü\x80\n"#)
    }

    func testTextfileGroupsFamiliesAndEscapes() {
        var sink = PrometheusMetrics()
        sink.gauge("a", "first\\family\nhelp", 1, labels: [("target", "x")])
        sink.gauge("b", "second", 0.5, labels: [("target", "x")])
        sink.gauge("a", "first\\family\nhelp", 2, labels: [("target", "y\r\n\"q\"")])
        sink.gauge("c", "inf", .infinity)
        XCTAssertEqual(sink.rendered(), """
            # HELP a first\\\\family\\nhelp
            # TYPE a gauge
            a{target="x"} 1
            a{target="y\r\\n\\"q\\""} 2
            # HELP b second
            # TYPE b gauge
            b{target="x"} 0.5
            # HELP c inf
            # TYPE c gauge
            c +Inf

            """)
    }
}
