import CRDKafka

/// A producer's calls: handing records to librdkafka, serving delivery reports, flushing.
extension RDKafkaClient {
    /// Hands `record` to librdkafka (copied); its delivery report goes to `target`. False when
    /// librdkafka's queue is full (serve delivery reports with `poll`, then try again).
    func produce(_ record: OutgoingRecord, target: RDKafkaDeliveryTarget) throws(KafkaError) -> Bool {
        let opaque = Unmanaged.passRetained(target).toOpaque()
        let error: OpaquePointer? = record.topic.withCString { topic in
            record.value.withUnsafeBytes { value in
                withKey(record.key) { key in
                    withHeaderValues(record.headers) { headers in
                        var values: [rd_kafka_vu_t] = []
                        values.append(vu(RD_KAFKA_VTYPE_TOPIC) { $0.cstr = topic })
                        values.append(vu(RD_KAFKA_VTYPE_VALUE) {
                            $0.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                            $0.mem.size = value.count
                        })
                        if let partition = record.partition {
                            values.append(vu(RD_KAFKA_VTYPE_PARTITION) { $0.i32 = partition })
                        }
                        if let key {
                            values.append(vu(RD_KAFKA_VTYPE_KEY) {
                                $0.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
                                $0.mem.size = key.count
                            })
                        }
                        for header in headers {
                            values.append(vu(RD_KAFKA_VTYPE_HEADER) {
                                $0.header.name = header.name
                                $0.header.val = header.value.baseAddress
                                $0.header.size = header.value.count
                            })
                        }
                        values.append(vu(RD_KAFKA_VTYPE_MSGFLAGS) { $0.i = RD_KAFKA_MSG_F_COPY })
                        values.append(vu(RD_KAFKA_VTYPE_OPAQUE) { $0.ptr = opaque })
                        return rd_kafka_produceva(handle, values, values.count)
                    }
                }
            }
        }
        guard let error else { return true }
        Unmanaged<RDKafkaDeliveryTarget>.fromOpaque(opaque).release()
        if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL {
            rd_kafka_error_destroy(error)
            return false
        }
        throw KafkaError(consuming: error, context: "produce to \(record.topic)")
    }

    /// Serves delivery reports (and other events) for up to `timeoutMilliseconds`.
    func poll(timeoutMilliseconds: Int32) { rd_kafka_poll(handle, timeoutMilliseconds) }

    /// Waits up to `timeoutMilliseconds` for everything queued to be delivered.
    func flush(timeoutMilliseconds: Int32) throws(KafkaError) {
        let result = rd_kafka_flush(handle, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "flush") }
    }
}

/// Where one record's delivery report goes (its `msg_opaque`, retained until the report).
final class RDKafkaDeliveryTarget: Sendable {
    let deliver: @Sendable (Result<DeliveryReport, KafkaError>) -> Void

    init(_ deliver: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) { self.deliver = deliver }
}

/// librdkafka calls this from `rd_kafka_poll` once per record.
let deliveryReportCallback: @convention(c) (
    OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?
) -> Void = { _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let target = Unmanaged<RDKafkaDeliveryTarget>.fromOpaque(opaque).takeRetainedValue()
    let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        target.deliver(.success(DeliveryReport(topic: topic, partition: message.pointee.partition, offset: message.pointee.offset)))
    } else {
        target.deliver(.failure(KafkaError(message.pointee.err, context: "deliver to \(topic)")))
    }
}

/// One value of the argument list of `rd_kafka_produceva`.
private func vu(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t.__Unnamed_union_u) -> Void) -> rd_kafka_vu_t {
    var value = rd_kafka_vu_t()
    value.vtype = type
    fill(&value.u)
    return value
}

private func withKey<Result>(_ key: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
    guard let key else { return body(nil) }
    return key.withUnsafeBytes { body($0) }
}

/// Keeps the C strings and bytes of `headers` alive while `body` runs.
private func withHeaderValues<Result>(
    _ headers: [(String, [UInt8])],
    _ body: ([(name: UnsafePointer<CChar>, value: UnsafeRawBufferPointer)]) -> Result
) -> Result {
    func step(_ index: Int, _ done: [(name: UnsafePointer<CChar>, value: UnsafeRawBufferPointer)]) -> Result {
        guard index < headers.count else { return body(done) }
        return headers[index].0.withCString { name in
            headers[index].1.withUnsafeBytes { value in step(index + 1, done + [(name, value)]) }
        }
    }
    return step(0, [])
}

