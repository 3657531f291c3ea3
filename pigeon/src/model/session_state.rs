//! The message state of a session: what is in flight, queued, or half-received.

use std::collections::VecDeque;

use super::Delivery;

/// An outgoing QoS 1/2 message sent but not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Inflight {
    /// The packet identifier it was sent with.
    pub packet_id: u16,
    /// What was sent.
    pub delivery: Delivery,
    /// QoS 2 only: PUBREC came, PUBREL was sent, PUBCOMP is awaited.
    pub released: bool,
}

/// The message state of a session while no connection owns it.
#[derive(Debug, Default, Clone)]
pub struct Parked {
    /// Unacknowledged outgoing messages, in send order (resent with DUP).
    pub inflight: Vec<Inflight>,
    /// Messages not sent yet, in arrival order.
    pub queued: VecDeque<Delivery>,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub incoming_qos2: Vec<u16>,
}
