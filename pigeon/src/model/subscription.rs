//! A subscription as a persistent session keeps it.

use pigeon_codec::SubscriptionOptions;

/// A subscription as stored for a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The topic filter.
    pub filter: String,
    /// Granted QoS and the MQTT 5.0 options.
    pub options: SubscriptionOptions,
    /// The MQTT 5.0 subscription identifier, if any.
    pub identifier: Option<u32>,
}
