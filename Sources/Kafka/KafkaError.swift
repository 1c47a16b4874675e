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

    public var description: String { message }
}
