// The floors of `leep score`:
//   leep-bench-floor PREDICTIONS.npy [--threads N]
//     two plain read passes over the same memory-mapped predictions with a summing loop,
//     nothing else: what any exact two-pass LEEP must at least do;
//   leep-bench-floor dsyrk FEATURES.npy
//     one DSYRK over the features, widened to float64 in blocks of 256 rows: G += XᵀX, the
//     n·D² multiply-adds that LogME and the H-scores cannot avoid, through the same OpenBLAS,
//     with the same kernels, that `leep` loads (LEEPCore's BLAS). One thread. Prints the
//     seconds, then a checksum;
//   leep-bench-floor dgemm N Z Y [--threads T]
//     one float64 product of pass 2's shape, (N×Z)·(Y×Z)ᵀ, its rows split into T slices with one
//     single-threaded DGEMM each, as `leep score --eep-accuracy` runs it, through the same
//     OpenBLAS; the operands are filled before the clock starts. Prints the seconds.
import COpenBLAS
import Dispatch
import Foundation
import LEEPCore
import PredictionFiles
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: leep-bench-floor PREDICTIONS.npy [--threads N]\n".utf8))
    exit(64)
}
/// `duration` in seconds.
func inSeconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
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
    return (inSeconds(elapsed), total.withLock { $0 })
}

/// One DSYRK pass over a float16/32/64 n×D array; returns (seconds, trace of G).
func dsyrkPass(_ array: NumPyArray) -> (Double, Double) {
    let (n, d) = (array.shape[0], array.shape[1])
    let block = 256
    var gram = [Double](repeating: 0, count: d * d)
    var rows = [Double](repeating: 0, count: block * d)
    BLAS.call { _ in }  // loads the library before the clock starts, as `leep` has by then
    let started = ContinuousClock.now
    var first = 0
    while first < n {
        let count = min(block, n - first)
        let start = first * d
        switch array.dtype {
        case .float16:
            let values = array.data.assumingMemoryBound(to: Float16.self)
            for k in 0..<(count * d) { rows[k] = Double(values[start + k]) }
        case .float32:
            let values = array.data.assumingMemoryBound(to: Float.self)
            for k in 0..<(count * d) { rows[k] = Double(values[start + k]) }
        default:
            let values = array.data.assumingMemoryBound(to: Double.self)
            for k in 0..<(count * d) { rows[k] = values[start + k] }
        }
        BLAS.call { blas in blas.dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(count), 1, rows, Int32(d), 1, &gram, Int32(d)) }
        first += count
    }
    let elapsed = ContinuousClock.now - started
    let trace = (0..<d).reduce(0.0) { $0 + gram[$1 * d + $1] }
    return (inSeconds(elapsed), trace)
}

/// The product's operands, shared by the slices' threads. `@unchecked Sendable`: the operands
/// are only read, and each thread writes its own rows of the product.
struct Operands: @unchecked Sendable {
    let left: UnsafePointer<Double>
    let right: UnsafePointer<Double>
    let product: UnsafeMutablePointer<Double>
}

/// (n×z)·(y×z)ᵀ in float64 on `threads` row slices; returns the seconds of the products.
func dgemmPass(n: Int, z: Int, y: Int, threads: Int) -> Double {
    let left = [Double](repeating: 1 / Double(z), count: n * z)
    let right = [Double](repeating: 0.5, count: y * z)
    var product = [Double](repeating: 0, count: n * y)
    BLAS.call { _ in }  // loads the library before the clock starts
    let started = ContinuousClock.now
    left.withUnsafeBufferPointer { left in
        right.withUnsafeBufferPointer { right in
            product.withUnsafeMutableBufferPointer { product in
                let operands = Operands(left: left.baseAddress!, right: right.baseAddress!, product: product.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: threads) { index in
                    let (left, right, product) = (operands.left, operands.right, operands.product)
                    let first = n * index / threads
                    let rows = n * (index + 1) / threads - first
                    BLAS.call { blas in
                        blas.dgemm(
                            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(y), Int32(z), 1, left + first * z,
                            Int32(z), right, Int32(z), 0, product + first * y, Int32(y))
                    }
                }
            }
        }
    }
    let elapsed = ContinuousClock.now - started
    return inSeconds(elapsed)
}

let threads = arguments.firstIndex(of: "--threads").map { Int(arguments[$0 + 1])! } ?? 1

if arguments[1] == "dgemm", arguments.count >= 5, let n = Int(arguments[2]), let z = Int(arguments[3]),
    let y = Int(arguments[4])
{
    print(String(format: "%.6f", dgemmPass(n: n, z: z, y: y, threads: threads)))
    exit(0)
}

if arguments[1] == "dsyrk", arguments.count >= 3 {
    let array = try NumPyArray(path: arguments[2], dtypes: [.float16, .float32, .float64], expected: "floats")
    let (seconds, trace) = dsyrkPass(array)
    print(String(format: "%.6f %.6e", seconds, trace))
    exit(0)
}

let array = try NumPyArray(path: arguments[1], dtypes: [.float16, .float32, .float64], expected: "floats")
let (seconds, checksum) = readTwice(array, threads: threads)
print(String(format: "{\"seconds\": %.6f, \"bytes\": %d, \"checksum\": %.3f}", seconds, array.data.count, checksum))
