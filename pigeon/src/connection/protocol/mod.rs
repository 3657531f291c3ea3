//! The MQTT protocol core of a connection, with no I/O and no engine: the
//! state each side of the QoS 1/2 flows needs (the outbound in-flight window,
//! the incoming QoS 2 exchanges, the Receive Maximum accounting), topic
//! aliases, keep-alive arithmetic, and the decisions on what to answer to
//! acknowledgements. The connection task reads and writes the packets; this
//! says what they are, and is tested without sockets.

pub(crate) mod acks;
pub(crate) mod alias;
mod ids;
pub(crate) mod incoming;
pub(crate) mod keep_alive;
pub(crate) mod window;

use pigeon_codec::Protocol;
use tokio::time::Instant;

pub(crate) use acks::PubRecAnswer;

/// What CONNECT and CONNACK settled, as far as the protocol core cares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    /// The protocol version the client speaks.
    pub(crate) version: Protocol,
    /// The client's Request Problem Information (reason strings on acks).
    pub(crate) problem_info: bool,
    /// The Keep Alive in seconds (0: none).
    pub(crate) keep_alive: u16,
    /// Deliveries the broker may have in flight to the client.
    pub(crate) max_inflight: u16,
    /// The Topic Alias Maximum the broker announced (aliases from the client).
    pub(crate) alias_in_max: u16,
    /// The client's Topic Alias Maximum (aliases to the client; 0: none).
    pub(crate) alias_out_max: u16,
}

/// The protocol state of one connection.
pub(crate) struct State {
    /// The protocol version the client speaks.
    pub(crate) version: Protocol,
    /// The client's Request Problem Information.
    pub(crate) problem_info: bool,
    /// Deliveries to the client awaiting their acknowledgements.
    pub(crate) window: window::Window,
    /// QoS 2 PUBLISHes from the client awaiting PUBREL.
    pub(crate) incoming: incoming::Incoming,
    /// Topic aliases the client set up.
    pub(crate) aliases_in: alias::Inbound,
    /// Topic aliases the broker set up.
    pub(crate) aliases_out: alias::Outbound,
    /// When the client's silence ends the connection.
    pub(crate) keep_alive: keep_alive::KeepAlive,
}

impl State {
    /// The state of a connection established `now` on these terms; `open_qos2`
    /// are the incoming QoS 2 exchanges a resumed session left open.
    pub(crate) fn new(terms: Terms, open_qos2: Vec<u16>, now: Instant) -> Self {
        Self {
            version: terms.version,
            problem_info: terms.problem_info,
            window: window::Window::new(terms.max_inflight),
            incoming: incoming::Incoming::new(open_qos2),
            aliases_in: alias::Inbound::new(terms.alias_in_max),
            aliases_out: alias::Outbound::new(terms.alias_out_max),
            keep_alive: keep_alive::KeepAlive::new(terms.keep_alive, now),
        }
    }

    /// Whether the client speaks MQTT 5.0.
    pub(crate) fn v5(&self) -> bool {
        self.version.is_v5()
    }
}
