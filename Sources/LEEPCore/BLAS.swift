import COpenBLAS
import Synchronization

/// The BLAS and LAPACK routines leepstream calls, from OpenBLAS loaded at first use
/// (`COpenBLAS` says why at run time rather than at link time).
///
/// Every call goes through `call`, which hands over the loaded routines. OpenBLAS's
/// single-threaded build hands out its shared work buffers without a lock — concurrent
/// `dsyrk`/`dsyevr` calls were seen to return wrong sums (4 of 10 runs of `leep score
/// --features --threads 2`) — so with that build `call` runs one call at a time in the process;
/// the pthreads build that is loaded by default locks its buffers, and calls run side by side.
public enum BLAS {
    private static let serial = Mutex(())

    /// Runs `body` with the loaded routines, one call at a time when the library cannot take more.
    public static func call<Result: Sendable>(_ body: (leep_blas) throws -> Result) rethrows -> Result {
        let library = loaded
        if library.pointee.parallel != 0 { return try body(library.pointee) }
        return try serial.withLock { _ in try body(library.pointee) }
    }

    /// What was loaded, for `leep --version`: "OpenBLAS 0.3.21 … (Zen kernels, chosen from …)
    /// at /usr/lib/…/libopenblas.so.0".
    public static var description: String {
        let library = loaded.pointee
        let threading = ["single-threaded build, calls serialised", "pthreads build", "OpenMP build"]
        let build = threading.indices.contains(Int(library.parallel)) ? threading[Int(library.parallel)] : "unknown build"
        return "\(String(cString: library.config)); \(String(cString: library.corename)) kernels, "
            + "\(String(cString: library.corename_source)); \(build); \(String(cString: library.path))"
    }

    /// Whether calls from several threads run at once (the library locks its work buffers).
    public static var runsCallsConcurrently: Bool { loaded.pointee.parallel != 0 }

    /// The loaded library; a process that needs BLAS and cannot load it stops here with the
    /// reason, as it would have at start had the library been linked.
    private static var loaded: UnsafePointer<leep_blas> { leep_blas_load_or_exit() }
}
