import Foundation

/// Writes `.npy` files the way NumPy does (format 1.0, header padded to 64 bytes), with knobs
/// to break them in each of the ways users do.
public struct NumPyFixture {
    /// A fresh temporary directory holding the fixture's files.
    public let directory: URL

    public init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("leep-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Deletes the directory and everything in it.
    public func remove() { try? FileManager.default.removeItem(at: directory) }

    /// The bytes of a `.npy` file holding `payload` under the given header fields.
    public static func npy(descr: String, shape: [Int], fortranOrder: Bool = false, payload: Data) -> Data {
        let shapeText = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(payload)
        return data
    }

    /// The raw little-endian bytes of `values`.
    public static func bytes<T>(of values: [T]) -> Data { values.withUnsafeBytes { Data($0) } }

    /// Writes `data` to `name` in the fixture's directory and returns its path.
    @discardableResult
    public func write(_ name: String, _ data: Data) throws -> String {
        let url = directory.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    /// An n×Z float64 predictions file.
    public func predictions(_ name: String = "predictions.npy", rows: [[Double]]) throws -> String {
        try write(name, Self.npy(descr: "<f8", shape: [rows.count, rows.first?.count ?? 0], payload: Self.bytes(of: rows.flatMap { $0 })))
    }

    /// An n×Z float32 predictions file.
    public func predictions32(_ name: String = "predictions32.npy", rows: [[Float]]) throws -> String {
        try write(name, Self.npy(descr: "<f4", shape: [rows.count, rows.first?.count ?? 0], payload: Self.bytes(of: rows.flatMap { $0 })))
    }

    /// A labels file of int64.
    public func labels(_ values: [Int64], name: String = "labels.npy") throws -> String {
        try write(name, Self.npy(descr: "<i8", shape: [values.count], payload: Self.bytes(of: values)))
    }
}
