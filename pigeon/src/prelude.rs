//! Everything a module needs: `use pigeon::prelude::*;`.

pub use crate::app::{App, Injectable, Module, Pigeon};
pub use crate::codec::{ConnAck, Connect, Protocol, Publish, QoS};
pub use crate::hooks::{
    AuthError, Client, Credential, Denied, Error, HookError, Json, Packet, Param, Params, Payload,
    Subscription, Subscriptions, Topic, Unsubscriptions,
};
pub use crate::{Config, PigeonService};
pub use pigeon_macros::{
    handlers, injectable, module, on_ack, on_authenticate, on_authorize_forward,
    on_authorize_publish, on_authorize_subscribe, on_client, on_client_disconnect, on_client_error,
    on_client_ready, on_closed, on_connack_sent, on_connection_error, on_keepalive_timeout,
    on_ping, on_pre_connect, on_publish, on_published, on_subscribe, on_unsubscribe,
};
