//! Where the store keeps what in Redis. Everything under `pigeon:`; a
//! session's keys carry its client id in braces (a Redis Cluster hash tag,
//! so one session's keys live on one shard and its scripts may touch them
//! all).
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `pigeon:retained` | HASH | topic → retained message (a PUBLISH) |
//! | `pigeon:session:{c}:state` | STRING | expiry state ([`SessionState`](crate::persistence::SessionState)) |
//! | `pigeon:session:{c}:node` | STRING | the node that holds the session in memory |
//! | `pigeon:session:{c}:subs` | HASH | filter → subscription (a SUBSCRIBE) |
//! | `pigeon:session:{c}:will` | STRING | will (a CONNECT) with its due time |
//! | `pigeon:session:{c}:msgs` | HASH | key → queued or in-flight copy (a PUBLISH with its state) |
//! | `pigeon:session:{c}:bytes` | STRING | what the offline queue weighs |
//! | `pigeon:session:{c}:qos2` | SET | incoming QoS 2 packet ids awaiting PUBREL |
//! | `pigeon:owner:{c}` | STRING | ownership lease: the node serving the client |
//! | `pigeon:node:{n}:sessions` | SET | persistent sessions node `n` held (read at its start) |
//! | `pigeon:store:alive:{n}` | STRING | node `n`'s store is running (short TTL, refreshed) |
//! | `pigeon:store:nodes` | SET | the nodes that ran a store (looked at for dead ones) |
//! | `pigeon:store:adopting:{n}` | STRING | the node adopting dead node `n`'s sessions (30 s) |
//!
//! Channels: `pigeon:kick:{n}` (take a session from node `n`: "from\nclient"),
//! `pigeon:released:{n}` (the session "client" was let go for node `n`).

pub(super) const RETAINED: &str = "pigeon:retained";

/// Every node that ran a Redis store (removed once a dead node's sessions
/// were adopted).
pub(super) const NODES: &str = "pigeon:store:nodes";

/// The lock of the node adopting node `n`'s sessions.
pub(super) fn adopting(node: &str) -> String {
    format!("pigeon:store:adopting:{{{node}}}")
}

/// The suffixes of a session's keys (all expire together).
pub(super) const SESSION_PARTS: [&str; 7] =
    ["state", "node", "subs", "will", "msgs", "bytes", "qos2"];

pub(super) fn session(client: &str, part: &str) -> String {
    format!("pigeon:session:{{{client}}}:{part}")
}

pub(super) fn owner(client: &str) -> String {
    format!("pigeon:owner:{{{client}}}")
}

pub(super) fn node_sessions(node: &str) -> String {
    format!("pigeon:node:{{{node}}}:sessions")
}

pub(super) fn alive(node: &str) -> String {
    format!("pigeon:store:alive:{{{node}}}")
}

pub(super) fn kick(node: &str) -> String {
    format!("pigeon:kick:{{{node}}}")
}

pub(super) fn released(node: &str) -> String {
    format!("pigeon:released:{{{node}}}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_session_s_keys_share_its_hash_tag() {
        assert_eq!(
            super::session("dev:1", "subs"),
            "pigeon:session:{dev:1}:subs"
        );
        assert_eq!(super::owner("dev:1"), "pigeon:owner:{dev:1}");
    }
}
