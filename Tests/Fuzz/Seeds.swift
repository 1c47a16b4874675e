import Foundation
import TestSupport

/// Each target's seed corpus: the golden wire-format fixtures (Tests/WireFormatTests/Fixtures,
/// written by the independent Python encoder), `.npy` files as NumPy writes them, and scripts
/// of honest runs that the script targets play to a final score, some with the fixtures in them.
enum Seeds {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../WireFormatTests/Fixtures").standardized

    /// Writes `directory/TARGET/NAME` for every seed of every target this build has.
    static func write(to directory: URL) throws {
        var seeds = ["frame-decode": try goldenFrames(), "npy-header": npyFiles(), "feature-statistics": featureScripts()]
        #if DEBUG || LEEP_FUZZ
        seeds["manifest-assembly"] = try HonestRun.manifestScripts(fixtures: goldenFrames())
        seeds["run-state-machine"] = try HonestRun.machineScripts(fixtures: goldenFrames())
        seeds["partition-state-machine"] = try HonestRun.partitionScripts()
        #endif
        for (target, files) in seeds {
            let folder = directory.appendingPathComponent(target, isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (name, bytes) in files { try Data(bytes).write(to: folder.appendingPathComponent(name)) }
            print("leep-fuzz seeds: \(files.count) for \(target) in \(folder.path)")
        }
    }

    /// Scripts of rows for `feature-statistics`: every byte string is one, so a few shapes
    /// (D, Y, n) with varied bytes are enough to start from.
    static func featureScripts() -> [(name: String, bytes: [UInt8])] {
        [(1, 1, 8), (6, 4, 48), (3, 2, 20)].map { width, classes, rows in
            var script = FuzzScript()
            script.int(width, in: 1...6)
            script.int(classes, in: 1...4)
            script.int(rows, in: 1...48)
            script.raw((0..<(rows * (2 + 2 * width) + 16)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ width) })
            return ("rows-d\(width)-y\(classes)-n\(rows)", script.bytes)
        }
    }

    static func goldenFrames() throws -> [(name: String, bytes: [UInt8])] {
        try FileManager.default.contentsOfDirectory(atPath: fixtures.path).filter { $0.hasSuffix(".bin") }.sorted().map {
            ($0, Array(try Data(contentsOf: fixtures.appendingPathComponent($0))))
        }
    }

    /// Files as `np.save` writes them (format 1.0), the same headers in formats 2.0 and 3.0,
    /// and a few of the ways leepstream refuses.
    static func npyFiles() -> [(name: String, bytes: [UInt8])] {
        let files: [(String, Data)] = [
            ("f4-2x3", NumPyFixture.npy(descr: "<f4", shape: [2, 3], payload: Data(count: 24))),
            ("f8-4x2", NumPyFixture.npy(descr: "<f8", shape: [4, 2], payload: Data(count: 64))),
            ("f2-3", NumPyFixture.npy(descr: "<f2", shape: [3], payload: Data(count: 6))),
            ("u1-5", NumPyFixture.npy(descr: "|u1", shape: [5], payload: Data(count: 5))),
            ("i8-0x3", NumPyFixture.npy(descr: "<i8", shape: [0, 3], payload: Data())),
            ("i4-scalar", NumPyFixture.npy(descr: "=i4", shape: [], payload: Data(count: 4))),
            ("fortran", NumPyFixture.npy(descr: "<f8", shape: [2, 2], fortranOrder: true, payload: Data(count: 32))),
            ("big-endian", NumPyFixture.npy(descr: ">f8", shape: [1], payload: Data(count: 8))),
            ("truncated", NumPyFixture.npy(descr: "<f4", shape: [4, 4], payload: Data(count: 10))),
        ]
        var seeds = files.map { ("\($0.0).npy", Array($0.1)) }
        // Formats 2.0 and 3.0 differ only by a 4-byte header length.
        for (name, data) in files.prefix(2) {
            let bytes = Array(data)
            let length = Int(bytes[8]) | Int(bytes[9]) << 8
            for major: UInt8 in [2, 3] {
                let preamble = Array(bytes[0..<6]) + [major, 0] + withUnsafeBytes(of: UInt32(length).littleEndian, Array.init)
                seeds.append(("\(name)-v\(major).npy", preamble + bytes[10...]))
            }
        }
        return seeds
    }
}
