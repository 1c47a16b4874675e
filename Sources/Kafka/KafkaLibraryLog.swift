import CRDKafka
import Logging
import Synchronization

/// Where librdkafka's own messages go (broker connections failing, retries, …).
///
/// By default librdkafka prints them to standard error in a format of its own, which would
/// break one-line structured logs. Once `route(to:)` is called, every client created afterwards
/// hands them to that logger instead, with librdkafka's syslog level mapped to swift-log's and
/// the facility and client name as metadata.
public enum KafkaLibraryLog {
    private static let target = Mutex<Logger?>(nil)

    /// Sends librdkafka's messages to `logger` from now on.
    public static func route(to logger: Logger) {
        target.withLock { $0 = logger }
    }

    /// librdkafka's syslog level (0 emergency … 7 debug) as a swift-log level.
    static func level(syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }

    /// Installs the routing callback on a client's configuration, if a logger was given.
    static func install(on conf: OpaquePointer) {
        guard target.withLock({ $0 != nil }) else { return }
        rd_kafka_conf_set_log_cb(conf, libraryLogCallback)
    }

    fileprivate static func emit(level: Int32, facility: String, message: String, client: String) {
        guard let logger = target.withLock({ $0 }) else { return }
        logger.log(level: Self.level(syslog: level), "\(message)", metadata: ["facility": "\(facility)", "client": "\(client)"])
    }
}

/// Called by librdkafka on its own threads.
private let libraryLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    handle, level, facility, message in
    KafkaLibraryLog.emit(
        level: level, facility: facility.map { String(cString: $0) } ?? "", message: message.map { String(cString: $0) } ?? "",
        client: handle.flatMap { rd_kafka_name($0) }.map { String(cString: $0) } ?? "")
}
