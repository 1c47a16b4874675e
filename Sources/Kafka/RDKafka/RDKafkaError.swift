import CRDKafka

extension KafkaError {
    /// librdkafka's error `code`, its text after `context`.
    init(_ code: rd_kafka_resp_err_t, context: String) {
        self.init(code: code.rawValue, message: "\(context): \(String(cString: rd_kafka_err2str(code)))")
    }

    /// Takes ownership of `error` (an `rd_kafka_error_t`) and destroys it.
    init(consuming error: OpaquePointer, context: String) {
        let code = rd_kafka_error_code(error)
        let text = String(cString: rd_kafka_error_string(error))
        let fatal = rd_kafka_error_is_fatal(error) != 0
        rd_kafka_error_destroy(error)
        self.init(code: code.rawValue, message: "\(context): \(text)", isFatal: fatal)
    }

    /// True for a record the broker did not acknowledge within the producer's
    /// `message.timeout.ms` (librdkafka retries until then).
    public var isDeliveryTimeout: Bool { code == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue }

    /// True for a delivery error that says the broker has no valid state for the producer's id
    /// (it lost its state, or another producer took the id over): librdkafka does not always
    /// call that fatal for an idempotent producer, yet every later batch fails the same way.
    var requiresNewProducer: Bool { code.map(Self.producerStateLost.contains) ?? false }

    private static let producerStateLost: Set<Int32> = [
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
        RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
    ].reduce(into: []) { $0.insert($1.rawValue) }
}
