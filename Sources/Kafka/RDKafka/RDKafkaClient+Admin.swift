import CRDKafka

extension RDKafkaClient {
    /// Creates each topic that does not exist yet (`KafkaAdmin.createTopics`); returns the names
    /// of those that existed.
    func createTopics(_ topics: [KafkaTopicSpecification], timeoutMilliseconds: Int32) throws(KafkaError) -> Set<String> {
        var errorText = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for topic in topics {
            guard let newTopic = rd_kafka_NewTopic_new(
                topic.name, topic.partitions, topic.replicationFactor, &errorText, errorText.count)
            else {
                throw KafkaError(message: "topic \(topic.name): \(cText(errorText))")
            }
            newTopics.append(newTopic)
            for (key, value) in topic.configs.sorted(by: { $0.key < $1.key }) {
                let code = rd_kafka_NewTopic_set_config(newTopic, key, value)
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code, context: "topic \(topic.name): \(key)=\(value)") }
            }
        }
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        rd_kafka_CreateTopics(handle, &newTopics, newTopics.count, options, queue)
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 5_000) else {
            throw KafkaLibrary.advising(KafkaError(message: "create topics: no answer from the broker"))
        }
        defer { rd_kafka_event_destroy(event) }
        if rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(message: "create topics: \(String(cString: rd_kafka_event_error_string(event)))")
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else { return [] }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return [] }
        var existing: Set<String> = []
        for index in 0..<count {
            let code = rd_kafka_topic_result_error(results[index])
            let name = String(cString: rd_kafka_topic_result_name(results[index]))
            if code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { existing.insert(name) }
            guard code != RD_KAFKA_RESP_ERR_NO_ERROR, code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else { continue }
            let text = rd_kafka_topic_result_error_string(results[index]).map { String(cString: $0) } ?? ""
            throw KafkaError(code: code.rawValue, message: "create topic \(name): \(text)")
        }
        return existing
    }
}
