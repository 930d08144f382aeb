// swift-tools-version:6.0
import PackageDescription

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
        // Whole-buffer DEFLATE at twice zlib's speed, for the gzip members compressed and
        // inflated in parallel (Compression/ParallelGzip.swift).
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // SHA-256 from Debian's libcrypto: hardware SHA instructions, 8x the portable code.
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Fault injection (ENOSPC, EIO, "crash after the N-th write") and a settable clock
        // exist only when built with -DABATHUR_FAULT_INJECTION, as `make check` builds the
        // tests; the build that ships cannot be told to fail.
        // glibc functions the Glibc module hides (posix_spawn's closefrom).
        .systemLibrary(name: "CLibc"),
        .target(name: "AbathurCore", dependencies: ["CSQLite", "CZlib", "CDeflate", "CCrypto", "CLibc"]),
        .target(
            name: "AbathurCommands",
            dependencies: ["AbathurCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // One multi-call binary; each tool is a link to it named after the tool.
        .executableTarget(name: "abathur-tools", dependencies: ["AbathurCommands"]),
        // Demo databases and a writer with invariants, for `make demo`, tests and benchmarks.
        // Not shipped.
        .executableTarget(name: "abathur-demo", dependencies: ["AbathurCore"]),
        // What both test targets share: a sandbox that runs the built binaries, real SQLite
        // states (hot WALs from writers that died), taking a backup, restoring one.
        .target(name: "AbathurTestSupport", path: "Tests/AbathurTestSupport"),
        .testTarget(name: "AbathurCoreTests", dependencies: ["AbathurCore", "AbathurTestSupport"]),
        // Runs the built binaries and checks stdout, stderr, exit status and files together.
        .testTarget(name: "AbathurToolsTests", dependencies: ["AbathurTestSupport"]),
    ]
)
