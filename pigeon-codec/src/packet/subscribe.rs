use crate::{AckProperties, QoS, ReasonCode, SubscribeProperties, UnsubscribeProperties};

/// When retained messages are sent for a new subscription (MQTT 5.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    OnSubscribe = 0,
    /// 1: send them only if the subscription did not already exist.
    OnNewSubscribe = 1,
    /// 2: never send them.
    Never = 2,
}

/// The options byte of one SUBSCRIBE entry. In 3.x only `qos` is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Quality of service.
    pub qos: QoS,
    /// Do not receive own publications (5.0).
    pub no_local: bool,
    /// Keep the retain flag as published when forwarding (5.0).
    pub retain_as_published: bool,
    /// When to send retained messages (5.0).
    pub retain_handling: RetainHandling,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// The topic filter (`$share/<group>/<filter>` for a shared subscription).
    pub filter: String,
    /// Subscription options.
    pub options: SubscriptionOptions,
}

impl SubscribeFilter {
    /// A filter with the given QoS and default options.
    pub fn new(filter: impl Into<String>, qos: QoS) -> Self {
        Self {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos,
                ..Default::default()
            },
        }
    }
}

/// SUBSCRIBE: at least one filter.
///
/// ```
/// use pigeon_codec::{QoS, Subscribe, SubscribeFilter};
/// let s = Subscribe::new(7, vec![SubscribeFilter::new("a/+", QoS::AtLeastOnce)]);
/// assert_eq!(s.filters.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// The topic filters, at least one.
    pub filters: Vec<SubscribeFilter>,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: SubscribeProperties,
}

impl Subscribe {
    /// A SUBSCRIBE with no properties.
    pub fn new(packet_id: u16, filters: Vec<SubscribeFilter>) -> Self {
        Self {
            packet_id,
            filters,
            properties: SubscribeProperties::default(),
        }
    }
}

/// SUBACK: one code per filter, in order (granted QoS, or a failure such as 0x80).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// One code per topic filter, in order.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: AckProperties,
}

/// UNSUBSCRIBE: at least one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// The topic filters, at least one.
    pub filters: Vec<String>,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: UnsubscribeProperties,
}

/// UNSUBACK. `reason_codes` has one entry per filter in 5.0 and is empty in 3.x.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// One code per topic filter, in order.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: AckProperties,
}
