import CRDKafka

/// Routes a client's own messages to `KafkaLibraryLog`, when a logger was given.
func installLibraryLog(on conf: OpaquePointer) {
    guard KafkaLibraryLog.isRouted else { return }
    rd_kafka_conf_set_log_cb(conf, libraryLogCallback)
}

/// Called by librdkafka on its own threads.
private let libraryLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    handle, level, facility, message in
    KafkaLibraryLog.emit(
        level: level, facility: facility.map { String(cString: $0) } ?? "", message: message.map { String(cString: $0) } ?? "",
        client: handle.flatMap { rd_kafka_name($0) }.map { String(cString: $0) } ?? "")
}
