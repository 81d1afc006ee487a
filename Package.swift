// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "pbp",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "pbp-notifyd", targets: ["pbp-notifyd"]),
    .executable(name: "pbp-fcgi", targets: ["pbp-fcgi"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
    .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.2.0"),
  ],
  targets: [
    // Thin C interop: the only modules that import C headers.
    .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
    .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
    .target(name: "CSystemShim"),

    // Safe Swift wrappers over the C libraries.
    .target(name: "PostgresClient", dependencies: ["CLibPQ", "DaemonSupport", "WALStream"]),
    .target(name: "FastCGI", dependencies: ["CFastCGI", "DaemonSupport"]),

    // Plain Swift concepts.
    .target(
      name: "ChangeStream",
      dependencies: ["JSON", .product(name: "DequeModule", package: "swift-collections")]),
    .target(name: "JSON"),
    // The logical replication stream's wire formats (LSNs, CopyData, pgoutput)
    // and the reader's decisions: what is an event, where it stands, what to confirm.
    .target(name: "WALStream"),
    // pbp-notifyd's decisions (a stream client's phases, the LISTEN link's liveness, where the
    // wal source's stream stands in the history), without sockets.
    .target(
      name: "ChangePublisher",
      dependencies: [
        "ChangeStream", "DaemonSupport", "WALStream", .product(name: "DequeModule", package: "swift-collections"),
      ]),
    // The wrapper of the system shim: signals, epoll, sockets, processes, shared memory, threads.
    .target(
      name: "DaemonSupport",
      dependencies: ["CSystemShim", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    // A worker's parking lot of long-polls and its follower of notifyd's stream.
    .target(
      name: "LongPoll",
      dependencies: ["ChangeStream", "DaemonSupport", .product(name: "HeapModule", package: "swift-collections")]),
    // The pool's shared scoreboard and what each worker reports in it.
    .target(name: "WorkerPool", dependencies: ["DaemonSupport"]),
    // Who a request acts for: bearer tokens verified with jwt-kit, and the role that follows.
    .target(
      name: "Identity",
      dependencies: [
        "JSON", .product(name: "JWTKit", package: "jwt-kit"),
        .product(name: "ExtrasBase64", package: "swift-extras-base64"),
      ]),
    // The HTTP API: routing, the tables' protocol, the changes endpoint's requests and answers.
    .target(
      name: "PBPAPI",
      dependencies: [
        "ChangeStream", "DaemonSupport", "JSON", "PostgresClient", "LongPoll", "WorkerPool",
      ]),

    .executableTarget(
      name: "pbp-notifyd",
      dependencies: [
        "ChangePublisher", "ChangeStream", "PostgresClient", "DaemonSupport", "WALStream",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    // A diagnostic, not installed: reads a slot and prints its pbp events as JSON lines.
    .executableTarget(
      name: "pbp-wal-dump",
      dependencies: [
        "PostgresClient", "WALStream", "DaemonSupport", "JSON",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .executableTarget(
      name: "pbp-fcgi",
      dependencies: [
        "PBPAPI", "FastCGI", "DaemonSupport", "Identity", "LongPoll", "WorkerPool", "PostgresClient",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),

    .testTarget(name: "JSONTests", dependencies: ["JSON"]),
    .testTarget(name: "FastCGITests", dependencies: ["FastCGI"]),
    .testTarget(name: "DaemonSupportTests", dependencies: ["DaemonSupport"]),
    .testTarget(name: "ChangeStreamTests", dependencies: ["ChangeStream"]),
    .testTarget(
      name: "ChangePublisherTests", dependencies: ["ChangePublisher", "ChangeStream", "DaemonSupport", "WALStream"]),
    .testTarget(name: "LongPollTests", dependencies: ["LongPoll", "ChangeStream", "DaemonSupport"]),
    .testTarget(name: "WorkerPoolTests", dependencies: ["WorkerPool"]),
    .testTarget(
      name: "PBPAPITests", dependencies: ["PBPAPI", "LongPoll", "ChangeStream", "JSON", "PostgresClient", "WorkerPool"]),
    .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient"]),
    .testTarget(name: "WALStreamTests", dependencies: ["WALStream"]),
    .testTarget(
      name: "IdentityTests",
      dependencies: [
        "Identity", "JSON", .product(name: "JWTKit", package: "jwt-kit"),
        .product(name: "ExtrasBase64", package: "swift-extras-base64"),
      ]),
  ],
  swiftLanguageModes: [.v6]
)

// Release builds let each module specialize the generics of the modules it
// uses: pbp-fcgi instantiates LongPoll's ChangeHub for its ParkedRequest, and
// unspecialized, the hub's dictionary and delivery loop cost about 2 µs more
// per delivered poll in a 10,000-poll fan-out (bench/RESULTS.md, issue 13).
for target in package.targets where target.type == .regular || target.type == .executable {
  target.swiftSettings =
    (target.swiftSettings ?? []) + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
}
