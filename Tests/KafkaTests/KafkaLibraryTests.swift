@testable import Kafka
import Testing

/// What leep says about the librdkafka it loaded. Needs no broker.
@Suite struct KafkaLibraryTests {
    /// 2.0.2 (Debian 12's) gets advice naming the file, the symptom and the fix; 2.1 and later none.
    @Test func anOldLibraryGetsAdviceAndANewOneNone() throws {
        let advice = try #require(
            KafkaLibrary.upgradeAdvice(versionNumber: 0x0200_02ff, version: "2.0.2", path: "/usr/lib/librdkafka.so.1"))
        #expect(advice.contains("librdkafka 2.0.2 (/usr/lib/librdkafka.so.1)"))
        #expect(advice.contains("Read underflow"))
        #expect(advice.contains("ops/setup"))
        #expect(KafkaLibrary.upgradeAdvice(versionNumber: 0x0201_00ff, version: "2.1.0", path: nil) == nil)
        #expect(KafkaLibrary.upgradeAdvice(versionNumber: 0x0210_00ff, version: "2.16.0", path: nil) == nil)
    }

    /// The advice is appended to an error only when the loaded library is old; the tests load
    /// the one ops/setup installed (or a system one ≥ 2.1), and `path` finds it in the process.
    @Test func theLoadedLibraryIsNamedAndNeedsNoAdvice() throws {
        #expect(KafkaLibrary.upgradeAdvice == nil)
        #expect(try #require(KafkaLibrary.path).contains("librdkafka"))
        let error = KafkaError(message: "create topics: no answer from the broker")
        #expect(KafkaLibrary.advising(error).message == error.message)
    }
}
