import Foundation
import Synchronization

/// The librdkafka this process loaded: which version, from which file, and whether it is too
/// old for the local broker.
///
/// librdkafka before 2.1 cannot read the ApiVersion answer of Tansu, the broker `ops/broker`
/// runs: every connection fails with "ApiVersionRequest failed: Local: Read underflow", which
/// says nothing of the cause. Debian 12 ships 2.0.2; `ops/setup` puts a newer one in
/// `.deps/librdkafka/lib`, which every binary's rpath names, so the fix is to run it.
public enum KafkaLibrary {
    /// librdkafka's version string ("2.16.0").
    public static var version: String { RDKafkaClient.libraryVersion }

    /// The file the dynamic loader mapped, from /proc/self/maps; nil where that cannot be read.
    public static var path: String? {
        // Read to the end rather than by the file's size: /proc reports a size of 0.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/maps"),
            let maps = String(data: file.readDataToEndOfFile(), encoding: .utf8)
        else { return nil }
        defer { try? file.close() }
        for line in maps.split(separator: "\n") {
            guard let start = line.firstIndex(of: "/"), line[start...].contains("librdkafka") else { continue }
            return String(line[start...])
        }
        return nil
    }

    /// What to do, when the loaded librdkafka is older than the local broker needs; else nil.
    public static var upgradeAdvice: String? {
        upgradeAdvice(versionNumber: RDKafkaClient.libraryVersionNumber, version: version, path: path)
    }

    /// The advice for a librdkafka of `versionNumber` (0xMMmmrrxx) loaded from `path`.
    static func upgradeAdvice(versionNumber: Int32, version: String, path: String?) -> String? {
        guard versionNumber < 0x0201_0000 else { return nil }
        return "this process loaded librdkafka \(version) (\(path ?? "path unknown")), older than the 2.1 "
            + "that the local broker (Tansu) needs: its connections fail with \"ApiVersionRequest failed: "
            + "Local: Read underflow\". Run ops/setup: it puts a newer librdkafka in .deps/librdkafka/lib, "
            + "where leep looks first (no rebuild needed); or point LD_LIBRARY_PATH at a librdkafka >= 2.1"
    }

    /// `error` with `upgradeAdvice` appended, when there is advice to give.
    static func advising(_ error: KafkaError) -> KafkaError {
        guard let advice = upgradeAdvice else { return error }
        return KafkaError(
            code: error.code, message: "\(error.message) (\(advice))", isFatal: error.isFatal,
            isConfigurationError: error.isConfigurationError)
    }

    private static let advised = Atomic(false)

    /// The advice to log once, when a library message shows the failure an old librdkafka meets.
    static func adviceOnce(after message: String) -> String? {
        guard message.contains("ApiVersionRequest failed"), let advice = upgradeAdvice,
            !advised.exchange(true, ordering: .relaxed)
        else { return nil }
        return advice
    }
}
