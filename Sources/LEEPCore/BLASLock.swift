import Synchronization

/// One BLAS or LAPACK call at a time in this process.
///
/// leepstream links OpenBLAS's single-threaded build (Package.swift says why), and that build is
/// not safe to call from two threads at once: its shared work buffers are handed out without a
/// lock: concurrent `dsyrk`/`dsyevr` calls were seen to return wrong sums (4 of 10 runs of
/// `leep score --features --threads 2`; with `dsyrk` alone unlocked, 1 of 20). Pass 2's
/// products (`EEPAccumulator`) go through it too: no wrong result was seen there in 20 runs, but
/// `dgemm` draws on the same buffers. The rest of each thread's work (validation, widening,
/// centring) still runs in parallel.
enum BLASLock {
    private static let mutex = Mutex(())

    /// Runs `body` while no other thread is inside a BLAS call guarded by this lock.
    static func run<Result>(_ body: () throws -> Result) rethrows -> Result {
        try mutex.withLock { _ in try body() }
    }
}
