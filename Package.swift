// swift-tools-version: 6.0
import PackageDescription

// Dependency direction (see docs/architecture.md):
//   LEEPCore (pure numerics)  ←  PredictionFiles (NumPy files)  ←  leep (command-line tool)
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
    ],
    targets: [
        .target(
            name: "LEEPCore",
            dependencies: [.product(name: "RealModule", package: "swift-numerics")]
        ),
        .target(name: "PredictionFiles", dependencies: ["LEEPCore"]),
        .executableTarget(
            name: "leep",
            dependencies: [
                "LEEPCore",
                "PredictionFiles",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LEEPCoreTests", dependencies: ["LEEPCore"]),
        // Writes .npy fixtures for the tests; not shipped.
        .target(name: "NumPyTestSupport", path: "Tests/NumPyTestSupport"),
        .testTarget(name: "PredictionFilesTests", dependencies: ["PredictionFiles", "NumPyTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["leep", "NumPyTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
