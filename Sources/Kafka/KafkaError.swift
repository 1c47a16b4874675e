import CRDKafka

/// An error reported by librdkafka (or by this wrapper about its use), with librdkafka's text.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// librdkafka's error code, when there is one.
    public let code: Int32?
    /// librdkafka's description, or the wrapper's.
    public let message: String
    /// True when the client cannot continue (a fatal error in librdkafka's sense).
    public let isFatal: Bool
    /// True when the client's configuration is refused: a new client would fail the same way.
    public let isConfigurationError: Bool

    /// Creates an error.
    public init(code: Int32? = nil, message: String, isFatal: Bool = false, isConfigurationError: Bool = false) {
        self.code = code
        self.message = message
        self.isFatal = isFatal
        self.isConfigurationError = isConfigurationError
    }

    init(_ code: rd_kafka_resp_err_t, context: String) {
        self.init(code: code.rawValue, message: "\(context): \(String(cString: rd_kafka_err2str(code)))")
    }

    /// Takes ownership of `error` and destroys it.
    init(consuming error: OpaquePointer, context: String) {
        let code = rd_kafka_error_code(error)
        let text = String(cString: rd_kafka_error_string(error))
        let fatal = rd_kafka_error_is_fatal(error) != 0
        rd_kafka_error_destroy(error)
        self.init(code: code.rawValue, message: "\(context): \(text)", isFatal: fatal)
    }

    public var description: String { message }

    /// True for a record the broker did not acknowledge within the producer's
    /// `message.timeout.ms` (librdkafka retries until then).
    public var isDeliveryTimeout: Bool { code == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue }
}
