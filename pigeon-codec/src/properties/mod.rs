//! MQTT 5.0 properties, one struct per packet kind so that a property a packet
//! may not carry cannot be set on it. Every field is `None`/empty when absent;
//! for MQTT 3.x connections they are always empty and never encoded.
//! User properties keep their order and duplicates.

pub(crate) mod codec;

use std::{fmt, ops::Deref};

use bytes::Bytes;

/// `(name, value)` pairs of the User Property (0x26), in wire order, duplicates kept.
pub type UserProperties = Vec<(String, String)>;

/// Properties of CONNECT (spec §3.1.2.11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// 0x11 Session Expiry Interval, in seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x21 Receive Maximum: unacknowledged QoS 1/2 PUBLISHes accepted at once (non-zero).
    pub receive_maximum: Option<u16>,
    /// 0x27 Maximum Packet Size, in bytes (non-zero).
    pub maximum_packet_size: Option<u32>,
    /// 0x22 Topic Alias Maximum: the highest topic alias accepted.
    pub topic_alias_maximum: Option<u16>,
    /// 0x19 Request Response Information.
    pub request_response_information: Option<bool>,
    /// 0x17 Request Problem Information.
    pub request_problem_information: Option<bool>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
    /// 0x15 Authentication Method (enhanced authentication).
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data (needs an authentication method).
    pub authentication_data: Option<Bytes>,
}

/// Will properties inside CONNECT (spec §3.1.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WillProperties {
    /// 0x18 Will Delay Interval, in seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x01 Payload Format Indicator: `true` when the payload is UTF-8.
    pub payload_format_indicator: Option<bool>,
    /// 0x02 Message Expiry Interval, in seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic (a topic name, no wildcards).
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
}

/// Properties of CONNACK (spec §3.2.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    /// 0x11 Session Expiry Interval, in seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x21 Receive Maximum: unacknowledged QoS 1/2 PUBLISHes accepted at once (non-zero).
    pub receive_maximum: Option<u16>,
    /// 0x24 Maximum QoS the server accepts (0 or 1 on the wire; absent means 2).
    pub maximum_qos: Option<crate::QoS>,
    /// 0x25 Retain Available.
    pub retain_available: Option<bool>,
    /// 0x27 Maximum Packet Size, in bytes (non-zero).
    pub maximum_packet_size: Option<u32>,
    /// 0x12 Assigned Client Identifier.
    pub assigned_client_identifier: Option<String>,
    /// 0x22 Topic Alias Maximum: the highest topic alias accepted.
    pub topic_alias_maximum: Option<u16>,
    /// 0x1F Reason String, for humans.
    pub reason_string: Option<String>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
    /// 0x28 Wildcard Subscription Available.
    pub wildcard_subscription_available: Option<bool>,
    /// 0x29 Subscription Identifiers Available.
    pub subscription_identifiers_available: Option<bool>,
    /// 0x2A Shared Subscription Available.
    pub shared_subscription_available: Option<bool>,
    /// 0x13 Server Keep Alive, in seconds (overrides the client's).
    pub server_keep_alive: Option<u16>,
    /// 0x1A Response Information.
    pub response_information: Option<String>,
    /// 0x1C Server Reference (another server to use).
    pub server_reference: Option<String>,
    /// 0x15 Authentication Method (enhanced authentication).
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data (needs an authentication method).
    pub authentication_data: Option<Bytes>,
}

/// Properties of PUBLISH (spec §3.3.2.3). A PUBLISH sent by a server may carry
/// several subscription identifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// 0x01 Payload Format Indicator: `true` when the payload is UTF-8.
    pub payload_format_indicator: Option<bool>,
    /// 0x02 Message Expiry Interval, in seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x23 Topic Alias (non-zero).
    pub topic_alias: Option<u16>,
    /// 0x08 Response Topic (a topic name, no wildcards).
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
    /// 0x0B Subscription Identifiers of the subscriptions this message matched.
    pub subscription_identifiers: Vec<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
}

impl PublishProperties {
    /// True when no property is set (the common case, cheap to check on the hot path).
    pub fn is_empty(&self) -> bool {
        self.payload_format_indicator.is_none()
            && self.message_expiry_interval.is_none()
            && self.topic_alias.is_none()
            && self.response_topic.is_none()
            && self.correlation_data.is_none()
            && self.user_properties.is_empty()
            && self.subscription_identifiers.is_empty()
            && self.content_type.is_none()
    }
}

/// The properties of a PUBLISH as one word: nothing is allocated while none is
/// set, which is every MQTT 3.x message and most 5.0 ones, so a [`Publish`]
/// stays small as it moves from decoder to router to queue to encoder.
///
/// Reads go through [`Deref`] to a [`PublishProperties`] (a shared empty one
/// when none is set); writes through [`make_mut`](Self::make_mut), which
/// allocates on the first one, or [`get_mut`](Self::get_mut), which never does.
/// Equality compares the properties, not whether they are allocated.
///
/// [`Publish`]: crate::Publish
///
/// ```
/// use pigeon_codec::{BoxedPublishProperties, PublishProperties};
/// let mut props = BoxedPublishProperties::default();
/// assert!(props.is_empty());
/// assert_eq!(props.message_expiry_interval, None);
/// props.make_mut().message_expiry_interval = Some(60);
/// assert_eq!(props.message_expiry_interval, Some(60));
/// let same: BoxedPublishProperties =
///     PublishProperties { message_expiry_interval: Some(60), ..Default::default() }.into();
/// assert_eq!(props, same);
/// ```
#[derive(Clone, Default)]
pub struct BoxedPublishProperties(Option<Box<PublishProperties>>);

/// What [`BoxedPublishProperties`] reads as when none is set.
static NO_PUBLISH_PROPERTIES: PublishProperties = PublishProperties {
    payload_format_indicator: None,
    message_expiry_interval: None,
    topic_alias: None,
    response_topic: None,
    correlation_data: None,
    user_properties: Vec::new(),
    subscription_identifiers: Vec::new(),
    content_type: None,
};

impl BoxedPublishProperties {
    /// True when no property is set: one load when none was ever set.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(PublishProperties::is_empty)
    }

    /// The properties (a shared empty set when none is set).
    #[inline]
    pub fn get(&self) -> &PublishProperties {
        self.0.as_deref().unwrap_or(&NO_PUBLISH_PROPERTIES)
    }

    /// The properties to change in place, `None` when none was ever set: for
    /// clearing a property without allocating.
    ///
    /// ```
    /// use pigeon_codec::BoxedPublishProperties;
    /// let mut props = BoxedPublishProperties::default();
    /// if let Some(p) = props.get_mut() {
    ///     p.topic_alias = None;
    /// }
    /// assert!(props.is_empty());
    /// ```
    #[inline]
    pub fn get_mut(&mut self) -> Option<&mut PublishProperties> {
        self.0.as_deref_mut()
    }

    /// The properties to change, allocating them on the first write.
    pub fn make_mut(&mut self) -> &mut PublishProperties {
        self.0.get_or_insert_with(Box::default)
    }

    /// Takes the properties out, leaving none set.
    ///
    /// ```
    /// use pigeon_codec::BoxedPublishProperties;
    /// let mut props = BoxedPublishProperties::default();
    /// props.make_mut().content_type = Some("json".into());
    /// assert_eq!(props.take().content_type.as_deref(), Some("json"));
    /// assert!(props.is_empty());
    /// ```
    pub fn take(&mut self) -> PublishProperties {
        self.0.take().map(|p| *p).unwrap_or_default()
    }

    /// Frees the allocation when no property is left in it (after clearing
    /// some through [`get_mut`](Self::get_mut)), so that later checks are one load.
    #[inline]
    pub fn shrink(&mut self) {
        if self.0.as_deref().is_some_and(PublishProperties::is_empty) {
            self.0 = None;
        }
    }

    /// True when the properties have an allocation of their own (tests check
    /// that decoding allocates only for a PUBLISH that has some).
    #[cfg(test)]
    pub(crate) fn is_allocated(&self) -> bool {
        self.0.is_some()
    }

    /// Boxes an already allocated set, dropping it when it is empty.
    pub(crate) fn from_box(props: Box<PublishProperties>) -> Self {
        let mut boxed = Self(Some(props));
        boxed.shrink();
        boxed
    }
}

impl Deref for BoxedPublishProperties {
    type Target = PublishProperties;

    #[inline]
    fn deref(&self) -> &PublishProperties {
        self.get()
    }
}

impl From<PublishProperties> for BoxedPublishProperties {
    /// Allocates only when a property is set.
    fn from(props: PublishProperties) -> Self {
        if props.is_empty() {
            Self(None)
        } else {
            Self(Some(Box::new(props)))
        }
    }
}

impl From<BoxedPublishProperties> for PublishProperties {
    fn from(mut props: BoxedPublishProperties) -> Self {
        props.take()
    }
}

impl PartialEq for BoxedPublishProperties {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for BoxedPublishProperties {}

impl PartialEq<PublishProperties> for BoxedPublishProperties {
    fn eq(&self, other: &PublishProperties) -> bool {
        self.get() == other
    }
}

impl fmt::Debug for BoxedPublishProperties {
    /// Prints as the properties themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK: a reason
/// string and user properties (spec §3.4.2.2 and the like).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckProperties {
    /// 0x1F Reason String, for humans.
    pub reason_string: Option<String>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
}

impl AckProperties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

/// Properties of SUBSCRIBE (spec §3.8.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeProperties {
    /// 1 to 268,435,455; zero is a protocol error.
    pub subscription_identifier: Option<u32>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
}

/// Properties of UNSUBSCRIBE (spec §3.10.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubscribeProperties {
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
}

/// Properties of DISCONNECT (spec §3.14.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    /// 0x11 Session Expiry Interval, in seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x1F Reason String, for humans.
    pub reason_string: Option<String>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
    /// 0x1C Server Reference (another server to use).
    pub server_reference: Option<String>,
}

/// Properties of AUTH (spec §3.15.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthProperties {
    /// 0x15 Authentication Method (enhanced authentication).
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data (needs an authentication method).
    pub authentication_data: Option<Bytes>,
    /// 0x1F Reason String, for humans.
    pub reason_string: Option<String>,
    /// 0x26 User Property pairs, in order, duplicates kept.
    pub user_properties: UserProperties,
}
