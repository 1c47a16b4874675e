// swift-tools-version: 6.0
import Foundation
import PackageDescription

// Dependency direction (see docs/architecture.md):
//   LEEPCore (pure numerics)  ←  PredictionFiles (NumPy files)  ←  leep (command-line tool)
/// Where `ops/setup` puts a librdkafka new enough for the local broker when the system's is
/// older than 2.1 (Debian 12 ships 2.0.2). Binaries always link the system's librdkafka (its
/// headers are the ones compiled against; the soname is the same) and always carry this rpath,
/// so a librdkafka put here later is the one loaded at run time, without a rebuild. Nothing here
/// looks at the file system: SwiftPM caches a manifest's evaluation by its text and environment,
/// so a link decided by what existed when it was evaluated would outlive the files it saw.
let librdkafkaRuntime: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "-rpath", "-Xlinker", Context.packageDirectory + "/.deps/librdkafka/lib"])
]

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
        // OpenBLAS, loaded at first use with the kernels the CPU's features allow (COpenBLAS.h
        // says why); its headers come from apt's libopenblas-dev, the library from libopenblas0.
        .target(name: "COpenBLAS"),
        // The per-row loops of both passes, compiled for several instruction sets (the header says why).
        .target(name: "CRowKernels"),
        .target(
            name: "LEEPCore",
            dependencies: ["COpenBLAS", "CRowKernels", .product(name: "RealModule", package: "swift-numerics")]
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
            name: "leep-bench-floor", dependencies: ["PredictionFiles", "LEEPCore", "COpenBLAS"], path: "bench/Floor"),
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
