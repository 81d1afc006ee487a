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
  ],
  targets: [
    // Thin C interop: the only modules that import C headers.
    .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
    .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
    .target(name: "CSystemShim"),

    // Safe Swift wrappers over the C libraries.
    .target(name: "PostgresClient", dependencies: ["CLibPQ"]),
    .target(name: "FastCGI", dependencies: ["CFastCGI", "CSystemShim"]),

    // Plain Swift concepts.
    .target(
      name: "ChangeStream",
      dependencies: ["JSON", .product(name: "DequeModule", package: "swift-collections")]),
    .target(name: "JSON"),
    // pbp-notifyd's decisions (a stream client's phases, the LISTEN link's liveness), without sockets.
    .target(name: "ChangePublisher", dependencies: ["ChangeStream", "DaemonSupport"]),
    .target(
      name: "DaemonSupport",
      dependencies: ["CSystemShim", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    .target(
      name: "PBPAPI",
      dependencies: [
        "ChangeStream", "JSON", "PostgresClient", "DaemonSupport", "CSystemShim",
        .product(name: "HeapModule", package: "swift-collections"),
      ]),

    .executableTarget(
      name: "pbp-notifyd",
      dependencies: [
        "ChangePublisher", "ChangeStream", "PostgresClient", "DaemonSupport",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .executableTarget(
      name: "pbp-fcgi",
      dependencies: [
        "PBPAPI", "FastCGI", "DaemonSupport", "ChangeStream",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),

    .testTarget(name: "JSONTests", dependencies: ["JSON"]),
    .testTarget(name: "FastCGITests", dependencies: ["FastCGI"]),
    .testTarget(name: "DaemonSupportTests", dependencies: ["DaemonSupport"]),
    .testTarget(name: "ChangeStreamTests", dependencies: ["ChangeStream"]),
    .testTarget(name: "ChangePublisherTests", dependencies: ["ChangePublisher", "ChangeStream", "DaemonSupport"]),
    .testTarget(name: "PBPAPITests", dependencies: ["PBPAPI", "ChangeStream", "JSON"]),
  ],
  swiftLanguageModes: [.v6]
)
