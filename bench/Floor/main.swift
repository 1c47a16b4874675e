// The floor for `leep score`: two plain read passes over the same memory-mapped predictions
// with a summing loop, nothing else. What any exact two-pass LEEP must at least do.
//   leep-bench-floor PREDICTIONS.npy [--threads N]
import Dispatch
import Foundation
import PredictionFiles
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: leep-bench-floor PREDICTIONS.npy [--threads N]\n".utf8))
    exit(64)
}
/// Two read passes over `array` on `threads` threads; returns (seconds, checksum).
func readTwice(_ array: NumPyArray, threads: Int) -> (Double, Double) {
    let started = ContinuousClock.now
    let total = Mutex(0.0)
    for _ in 0..<2 {
        // Each thread sums a contiguous slice, eight float32 lanes at a time (a read pass).
        DispatchQueue.concurrentPerform(iterations: threads) { index in
            let bytes = array.data
            let words = bytes.count / 32
            var lanes = SIMD8<Float>.zero
            for word in (words * index / threads)..<(words * (index + 1) / threads) {
                lanes += bytes.loadUnaligned(fromByteOffset: word * 32, as: SIMD8<Float>.self)
            }
            let sum = Double(lanes.sum())
            total.withLock { $0 += sum }
        }
    }
    let elapsed = ContinuousClock.now - started
    return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, total.withLock { $0 })
}

let threads = arguments.firstIndex(of: "--threads").map { Int(arguments[$0 + 1])! } ?? 1
let array = try NumPyArray(path: arguments[1], dtypes: [.float16, .float32, .float64], expected: "floats")
let (seconds, checksum) = readTwice(array, threads: threads)
print(String(format: "{\"seconds\": %.6f, \"bytes\": %d, \"checksum\": %.3f}", seconds, array.data.count, checksum))
