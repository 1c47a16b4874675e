import Logging
import Synchronization

/// Where librdkafka's own messages go (broker connections failing, retries, …).
///
/// By default librdkafka prints them to standard error in a format of its own, which would
/// break one-line structured logs. Once `route(to:)` is called, every client created afterwards
/// hands them to that logger instead, with librdkafka's syslog level mapped to swift-log's and
/// the facility and client name as metadata.
///
/// A broker that does not answer makes librdkafka say so on every reconnection attempt, many
/// times a second; `RepeatFilter` lets through the first of a kind of message and then one a
/// minute, with the count of those held back.
public enum KafkaLibraryLog {
    private static let target = Mutex<Logger?>(nil)
    private static let repeats = Mutex(RepeatFilter(window: .seconds(60)))

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

    /// Whether librdkafka's messages are routed (`route(to:)` was called).
    static var isRouted: Bool { target.withLock { $0 != nil } }

    static func emit(level: Int32, facility: String, message: String, client: String) {
        guard let logger = target.withLock({ $0 }) else { return }
        guard let heldBack = repeats.withLock({ $0.admit(facility + " " + message, at: .now) }) else { return }
        var metadata: Logger.Metadata = ["facility": "\(facility)", "client": "\(client)"]
        if heldBack > 0 { metadata["similar_held_back"] = "\(heldBack)" }
        logger.log(level: Self.level(syslog: level), "\(message)", metadata: metadata)
        if let advice = KafkaLibrary.adviceOnce(after: message) { logger.error("\(advice)") }
    }
}

/// Lets through the first message of each kind, then at most one per `window`, saying how many
/// of its kind were held back. Messages are of one kind when they differ only in numbers
/// (times, counts, ports): "Connect failed (after 0ms …)" and "(after 3ms …)" are one.
struct RepeatFilter {
    let window: Duration
    private var seen: [String: (lastShown: ContinuousClock.Instant, heldBack: Int)] = [:]

    init(window: Duration) { self.window = window }

    /// Nil to hold `message` back; else the number of its kind held back since the last shown.
    mutating func admit(_ message: String, at now: ContinuousClock.Instant) -> Int? {
        var kind = ""
        for character in message where !(character.isNumber && kind.last == "#") {
            kind.append(character.isNumber ? "#" : character)
        }
        if let entry = seen[kind], now - entry.lastShown < window {
            seen[kind]!.heldBack += 1
            return nil
        }
        // Bounded: a long-lived process sees many kinds over months; forgetting them only means
        // showing one more line.
        if seen.count >= 1_000 { seen.removeAll() }
        let heldBack = seen[kind]?.heldBack ?? 0
        seen[kind] = (now, 0)
        return heldBack
    }
}
