/// librdkafka properties for a client: the bootstrap servers plus any property librdkafka
/// accepts (TLS, SASL, timeouts, …), passed through unchanged.
///
/// Values of secret properties never appear in `description`, so a configuration can be logged.
public struct KafkaConfiguration: Sendable, CustomStringConvertible {
    /// The properties, as librdkafka names them.
    public var properties: [String: String]

    /// A configuration for the given bootstrap servers ("host:port,host:port").
    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.properties = properties
        self.properties["bootstrap.servers"] = bootstrapServers
    }

    /// Reads or sets one property.
    public subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// A copy with `other` merged in: `other` wins unless `keepingExisting`, in which case it
    /// only fills in properties not set yet (defaults under the user's settings).
    public func merging(_ other: [String: String], keepingExisting: Bool = false) -> KafkaConfiguration {
        var copy = self
        copy.properties.merge(other) { existing, new in keepingExisting ? existing : new }
        return copy
    }

    /// True for properties whose values are secrets (passwords, keys, tokens).
    public static func isSecret(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return ["password", "secret", "key.pem", "private", "token", "sasl.oauthbearer.config", "sasl.jaas"]
            .contains { lowered.contains($0) }
    }

    /// The properties with secret values replaced by `***`.
    public var description: String {
        properties.keys.sorted().map { key in "\(key)=\(Self.isSecret(key) ? "***" : properties[key]!)" }
            .joined(separator: ", ")
    }
}
