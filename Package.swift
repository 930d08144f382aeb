// swift-tools-version:6.0
import PackageDescription

// Fault injection (ENOSPC, EIO, "crash after the N-th write") exists only in debug builds,
// which is what the tests run; release builds, the ones that ship, cannot be told to fail.
let faultInjection: [SwiftSetting] = [.define("ABATHUR_FAULT_INJECTION", .when(configuration: .debug))]

let package = Package(
    name: "abathur-tools",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "abathur-tools", targets: ["abathur-tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "AbathurCore", dependencies: ["CSQLite", "CZlib"], swiftSettings: faultInjection),
        .target(
            name: "AbathurCommands",
            dependencies: ["AbathurCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // One multi-call binary; each tool is a link to it named after the tool.
        .executableTarget(name: "abathur-tools", dependencies: ["AbathurCommands"]),
    ]
)
