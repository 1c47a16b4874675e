import Foundation

/// One fuzz target: its name on the command line and the function each input is given to.
struct FuzzTarget: Sendable {
    let name: String
    let run: @Sendable (UnsafeRawBufferPointer) -> Void

    static let all: [FuzzTarget] = {
        var targets = [
            FuzzTarget(name: "frame-decode", run: FrameDecodeTarget.run),
            FuzzTarget(name: "npy-header", run: NumPyHeaderTarget.run),
            FuzzTarget(name: "feature-statistics", run: FeatureStatisticsTarget.run),
        ]
        #if DEBUG || LEEP_FUZZ
        targets += [
            FuzzTarget(name: "manifest-assembly", run: ManifestAssemblyTarget.run),
            FuzzTarget(name: "run-state-machine", run: { _ = RunStateMachineTarget.run($0) }),
            FuzzTarget(name: "partition-state-machine", run: { _ = PartitionStateMachineTarget.run($0) }),
        ]
        #endif
        return targets
    }()
}

/// The target libFuzzer's callback runs: chosen once in `main`, before fuzzing starts, and only
/// read after (libFuzzer calls back on the thread that called it).
nonisolated(unsafe) private var selectedTarget: FuzzTarget?

/// libFuzzer's entry point, called with each input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget?.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if LEEP_FUZZ
/// libFuzzer's driver (compiler-rt), linked in by `-sanitize=fuzzer`. Called from our own `main`
/// rather than libFuzzer's, so that one executable serves every target.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

/// `leep-fuzz`: the fuzz targets of docs/reliability.md ("Fuzzing"), in one executable.
///
///     leep-fuzz TARGET [libFuzzer flags] [corpus directories]   built by ops/fuzz (-sanitize=fuzzer,address)
///     leep-fuzz TARGET FILE_OR_DIRECTORY...                      any other build: replays each input once
///     leep-fuzz seeds DIRECTORY                                  writes every target's seeds, DIRECTORY/TARGET/
///
/// The replay is the regression check a normal build can run on a corpus or a crash file.
@main
struct LeepFuzz {
    static func main() throws {
        var arguments = CommandLine.arguments
        let program = arguments.removeFirst()
        if arguments.first == "seeds", arguments.count == 2 {
            try Seeds.write(to: URL(fileURLWithPath: arguments[1], isDirectory: true))
            return
        }
        // libFuzzer re-runs this executable for -fork, -jobs and -merge without the target's
        // name: the environment carries it to those children.
        let name = arguments.first.flatMap { first in FuzzTarget.all.contains { $0.name == first } ? first : nil }
        guard let target = FuzzTarget.all.first(where: { $0.name == (name ?? ProcessInfo.processInfo.environment["LEEP_FUZZ_TARGET"]) }) else {
            fail("usage: leep-fuzz TARGET [inputs…] | leep-fuzz seeds DIRECTORY; targets: "
                + FuzzTarget.all.map(\.name).joined(separator: ", ")
                + " (manifest-assembly, run-state-machine and partition-state-machine need a debug or an ops/fuzz build: they @testable import Pipeline)")
        }
        if name != nil { arguments.removeFirst() }
        setenv("LEEP_FUZZ_TARGET", target.name, 1)
        selectedTarget = target
        #if LEEP_FUZZ
        var argv = ([program] + arguments).map { strdup($0) } + [nil]
        var argc = CInt(argv.count - 1)
        exit(argv.withUnsafeMutableBufferPointer { buffer in
            var pointer = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &pointer, fuzzOneInput)
        })
        #else
        _ = program
        try replay(target, arguments)
        #endif
    }

    /// Runs each file, and each file of each directory, through `target` once.
    static func replay(_ target: FuzzTarget, _ paths: [String]) throws {
        guard !paths.isEmpty else { fail("leep-fuzz \(target.name): name the files or directories to replay") }
        var count = 0
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fail("\(path): no such file") }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                try Data(contentsOf: URL(fileURLWithPath: file)).withUnsafeBytes(target.run)
                count += 1
            }
        }
        print("leep-fuzz \(target.name): \(count) inputs replayed, no failure")
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(2)
    }
}
