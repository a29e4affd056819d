//! What a failed publication means: retried, dead-lettered (the codes in
//! [`FATAL`], by name), or a producer to replace. The one place that decides.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Errors no retry can fix, by name: the message is dead-lettered.
pub const FATAL: &[(RDKafkaErrorCode, &str)] = &[
    (RDKafkaErrorCode::MessageSizeTooLarge, "message too large"),
    (RDKafkaErrorCode::InvalidMessageSize, "invalid message size"),
    (
        RDKafkaErrorCode::MessageBatchTooLarge,
        "message batch too large",
    ),
    (RDKafkaErrorCode::InvalidRecord, "invalid record"),
    (
        RDKafkaErrorCode::TopicAuthorizationFailed,
        "topic authorization failed",
    ),
    (
        RDKafkaErrorCode::ClusterAuthorizationFailed,
        "cluster authorization failed",
    ),
    (
        RDKafkaErrorCode::UnknownTopicOrPartition,
        "unknown topic or partition",
    ),
    (RDKafkaErrorCode::UnknownTopic, "unknown topic"),
    (RDKafkaErrorCode::UnknownPartition, "unknown partition"),
    (RDKafkaErrorCode::InvalidTopic, "invalid topic"),
];

/// What a failure means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Try again later.
    Retryable,
    /// Never publishable: dead-letter it, with this reason.
    Fatal(&'static str),
    /// The producer itself is unusable (an idempotence fatal error): replace it.
    ProducerFatal,
}

/// The one place that decides what is retried.
pub fn classify(e: &KafkaError) -> Class {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Fatal) => Class::ProducerFatal,
        Some(code) => FATAL
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(Class::Retryable, |(_, reason)| Class::Fatal(reason)),
        None => Class::Retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_codes_are_named_and_everything_else_retries() {
        let fatal = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(classify(&fatal), Class::Fatal("message too large"));
        let unknown = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert_eq!(
            classify(&unknown),
            Class::Fatal("unknown topic or partition")
        );
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::QueueFull,
        ] {
            assert_eq!(
                classify(&KafkaError::MessageProduction(code)),
                Class::Retryable,
                "{code:?}"
            );
        }
        assert_eq!(
            classify(&KafkaError::MessageProduction(RDKafkaErrorCode::Fatal)),
            Class::ProducerFatal
        );
        assert_eq!(classify(&KafkaError::Canceled), Class::Retryable);
    }
}
