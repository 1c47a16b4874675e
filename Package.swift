// swift-tools-version: 6.0
import Foundation
import PackageDescription

// Dependency direction (see docs/architecture.md):
//   LEEPCore (pure numerics)  ←  PredictionFiles (NumPy files)  ←  leep (command-line tool)
/// Where `ops/setup` puts a librdkafka new enough for the local broker when the system's is
/// older than 2.1 (Debian 12 ships 2.0.2). When present, binaries link against it and find it
/// at run time through an rpath, so they run with no environment variables.
let librdkafkaRuntime: [LinkerSetting] = {
    let directory = Context.packageDirectory + "/.deps/librdkafka/lib"
    guard FileManager.default.fileExists(atPath: directory + "/librdkafka.so") else { return [] }
    return [.unsafeFlags(["-L" + directory, "-Xlinker", "-rpath", "-Xlinker", directory])]
}()

/// OpenBLAS's single-threaded build (apt libopenblas-serial-dev), found first at run time through
/// an rpath when installed. leepstream runs one matrix product per scoring thread; the default
/// pthreads build starts a pool of threads when it is loaded, and they spin on a core for a
/// tenth of a second even when no product is ever computed. Both builds share one soname.
let serialOpenBLAS: [LinkerSetting] = {
    let directory = "/usr/lib/x86_64-linux-gnu/openblas-serial"
    guard FileManager.default.fileExists(atPath: directory + "/libopenblas.so.0") else { return [] }
    return [.unsafeFlags(["-Xlinker", "-rpath", "-Xlinker", directory])]
}()

let package = Package(
    name: "leepstream",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "leep", targets: ["leep"]),
        .library(name: "LEEPCore", targets: ["LEEPCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // OpenBLAS (apt libopenblas-dev): the matrix product of pass 2's EEP accuracy.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(
            name: "LEEPCore",
            dependencies: ["CBLAS", .product(name: "RealModule", package: "swift-numerics")],
            linkerSettings: serialOpenBLAS
        ),
        .target(name: "PredictionFiles", dependencies: ["LEEPCore"]),
        .target(name: "WireFormat", dependencies: ["LEEPCore"]),
        // glibc's malloc.h (malloc_trim): the aggregator gives closed runs' memory back.
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(name: "CRDKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .target(
            name: "Kafka", dependencies: ["CRDKafka", .product(name: "Logging", package: "swift-log")],
            linkerSettings: librdkafkaRuntime),
        .target(
            name: "Pipeline",
            dependencies: [
                "LEEPCore", "PredictionFiles", "WireFormat", "Kafka", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Operating the roles: Prometheus /metrics and /health over HTTP, signals and ordered
        // shutdown. The roles themselves only speak the swift-metrics API.
        .target(
            name: "Operations",
            dependencies: [
                "Pipeline",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "leep",
            dependencies: [
                "LEEPCore",
                "PredictionFiles",
                "WireFormat",
                "Kafka",
                "Pipeline",
                "Operations",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmark baselines (bench/): the read and DSYRK floors and the raw librdkafka transport.
        .executableTarget(
            name: "leep-bench-floor", dependencies: ["PredictionFiles", "CBLAS"], path: "bench/Floor",
            linkerSettings: serialOpenBLAS),
        .executableTarget(
            name: "leep-bench-kafka", dependencies: ["Kafka", "LEEPCore", "Pipeline", "PredictionFiles", "WireFormat"],
            path: "bench/RawKafka"),
        // The fuzz targets (docs/reliability.md, "Fuzzing"): ops/fuzz builds them with libFuzzer and
        // AddressSanitizer; any other build replays inputs through them. Not shipped.
        .executableTarget(
            name: "leep-fuzz", dependencies: ["LEEPCore", "PredictionFiles", "WireFormat", "Pipeline", "TestSupport"],
            path: "Tests/Fuzz"),
        .testTarget(name: "LEEPCoreTests", dependencies: ["LEEPCore", "TestSupport"]),
        // Test helpers (.npy fixtures, a seeded generator); not shipped.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "PredictionFilesTests", dependencies: ["PredictionFiles", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["leep", "TestSupport"]),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "TestSupport"]),
        .testTarget(name: "WireFormatTests", dependencies: ["WireFormat", "LEEPCore"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
