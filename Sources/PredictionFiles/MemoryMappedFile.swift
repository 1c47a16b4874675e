#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory, unmapped when the last reference goes.
///
/// `@unchecked Sendable`: the mapping is read-only and never changes after `init`.
final class MemoryMappedFile: @unchecked Sendable {
    /// The file's bytes.
    let bytes: UnsafeRawBufferPointer

    /// Maps `path`; an empty file maps to an empty buffer (mmap refuses length 0).
    init(path: String) throws(FileProblem) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .cannotOpen(reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .cannotOpen(reason: String(cString: strerror(errno))) }
        // mmap of a directory fails with "No such device", which says nothing useful.
        guard status.st_mode & S_IFMT != S_IFDIR else { throw .cannotOpen(reason: "it is a directory, not a .npy file") }
        let length = Int(status.st_size)
        guard length > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0),
              address != MAP_FAILED
        else { throw .cannotOpen(reason: "mmap: " + String(cString: strerror(errno))) }
        // Both passes read front to back: let the kernel read ahead aggressively.
        _ = madvise(address, length, MADV_SEQUENTIAL)
        bytes = UnsafeRawBufferPointer(start: address, count: length)
    }

    deinit {
        if let address = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: address), bytes.count)
        }
    }
}
