import COpenBLAS
import Dispatch
@testable import LEEPCore
import TestSupport
import Synchronization
import Testing

/// The OpenBLAS that `BLAS` loads computes right when called from several threads at once.
@Suite struct BLASTests {
    /// Small-integer matrices, so every sum is exact in float64 whatever the order of its terms:
    /// a product that shares a work buffer with another thread's cannot hide in rounding.
    private static func integerMatrix(rows: Int, columns: Int, seed: UInt64) -> [Double] {
        var generator = SeededGenerator(seed: seed)
        return (0..<(rows * columns)).map { _ in Double(Int.random(in: -8...8, using: &generator)) }
    }

    /// Each thread's DSYRK (XᵀX, upper triangle) and DGEMM (X·Wᵀ) against the plain loops, with
    /// eight threads calling at once, ten times each: shapes large enough that OpenBLAS packs
    /// its operands into its work buffers, the ones its single-threaded build hands out
    /// without a lock.
    @Test func productsFromSeveralThreadsAtOnceEqualThePlainSums() {
        let rows = 256, width = 192, outputs = 64, threads = 8, repeats = 10
        let inputs: [(x: [Double], w: [Double])] = (0..<threads).map { thread in
            let seed = UInt64(2 * thread + 1)
            return (Self.integerMatrix(rows: rows, columns: width, seed: seed),
                    Self.integerMatrix(rows: outputs, columns: width, seed: seed + 1))
        }
        let expected: [(gram: [Double], product: [Double])] = inputs.map { input in
            var gram = [Double](repeating: 0, count: width * width)
            var product = [Double](repeating: 0, count: rows * outputs)
            for r in 0..<rows {
                let row = input.x[(r * width)..<((r + 1) * width)]
                for i in 0..<width {
                    for j in i..<width { gram[i * width + j] += row[r * width + i] * row[r * width + j] }
                }
                for o in 0..<outputs {
                    var sum = 0.0
                    for k in 0..<width { sum += row[r * width + k] * input.w[o * width + k] }
                    product[r * outputs + o] = sum
                }
            }
            return (gram, product)
        }
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let input = inputs[thread]
            for _ in 0..<repeats {
                var gram = [Double](repeating: 0, count: width * width)
                var product = [Double](repeating: 0, count: rows * outputs)
                BLAS.call { blas in
                    blas.dsyrk(
                        CblasRowMajor, CblasUpper, CblasTrans, Int32(width), Int32(rows), 1, input.x, Int32(width), 0,
                        &gram, Int32(width))
                }
                BLAS.call { blas in
                    blas.dgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outputs), Int32(width), 1, input.x,
                        Int32(width), input.w, Int32(width), 0, &product, Int32(outputs))
                }
                var upper = gram
                for i in 0..<width { for j in 0..<i { upper[i * width + j] = 0 } }
                if upper != expected[thread].gram || product != expected[thread].product {
                    mismatches.withLock { $0 += 1 }
                }
            }
        }
        #expect(mismatches.withLock { $0 } == 0)
    }

    /// The library loaded by default is a build that locks its buffers, so calls need no lock
    /// of ours, and `leep --version` can say which kernels it runs and why.
    @Test func theDefaultLibraryRunsCallsConcurrentlyAndSaysWhichKernels() {
        #expect(BLAS.runsCallsConcurrently)
        #expect(BLAS.description.contains("OpenBLAS"))
        #expect(BLAS.description.contains("kernels"))
    }
}
