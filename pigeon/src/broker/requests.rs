//! Serves the `#[on_request]` handlers: each reads its requests from an
//! in-process subscription and publishes the answers as the broker.
//!
//! The subscription is a shared one (`$share/pigeon-rpc:<Type::method>/...`):
//! in a cluster, each request is answered by one node, not by every node
//! that runs the handler. At most `concurrency` calls of a handler run at
//! once; further requests wait in its subscription's queue, which is bounded
//! as a client's is, so that a flood of requests slows the requesters (QoS
//! 1/2) instead of growing without bound.

use std::sync::Arc;

use futures_util::future::poll_fn;
use pigeon_codec::QoS;
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    engine::{Engine, LocalSubscription, Subscriber},
    hooks::Client,
};

/// Subscribes every request handler and spawns its server.
pub(super) async fn serve(engine: &Arc<Engine>) {
    let hooks = engine.hooks.clone();
    for (index, handler) in hooks.requests().iter().enumerate() {
        let filter = format!("$share/pigeon-rpc:{}/{}", handler.name(), handler.filter());
        let sub = LocalSubscription {
            filter: &filter,
            qos: QoS::ExactlyOnce,
            retained: false,
            end_when_slow: false,
        };
        let subscriber = engine.subscribe_local(sub).await;
        tracing::debug!(handler = handler.name(), %filter, "request handler subscribed");
        engine
            .tracker
            .spawn(serve_one(engine.clone(), index, subscriber));
    }
}

/// Takes one request whenever a call slot is free, until shutdown (calls
/// still running then are dropped with the broker's connections).
async fn serve_one(engine: Arc<Engine>, index: usize, mut subscriber: Subscriber) {
    let hooks = engine.hooks.clone();
    let Some(handler) = hooks.requests().get(index) else {
        return;
    };
    let slots = Arc::new(Semaphore::new(handler.limits.concurrency));
    let mut calls = JoinSet::new();
    loop {
        while calls.try_join_next().is_some() {}
        // A slot first: over the limit, requests stay in the queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = engine.shutdown.cancelled() => return,
        };
        let Ok(slot) = slot else { return };
        let Some(delivery) = poll_fn(|cx| subscriber.poll_next(cx)).await else {
            return;
        };
        let client = delivery
            .message
            .origin
            .as_deref()
            .and_then(|id| engine.session(id))
            .and_then(|s| s.client());
        let accepted = match handler.accept(client.clone(), delivery.message.publish.clone()) {
            Ok(accepted) => accepted,
            Err(reason) => {
                hooks.refuse_request(client.as_ref(), reason);
                continue;
            }
        };
        if !may_answer(&engine, accepted.client(), accepted.response_topic()) {
            let reason = format!(
                "request for {}: the ACL does not let the requester publish to the response topic {:?}: not answered",
                handler.name(),
                accepted.response_topic()
            );
            hooks.refuse_request(client.as_ref(), reason);
            continue;
        }
        let engine = engine.clone();
        calls.spawn(async move {
            let _slot = slot;
            let hooks = engine.hooks.clone();
            if let Some(handler) = hooks.requests().get(index) {
                let response = handler.answer(&hooks, accepted).await;
                engine.publish(None, None, response).await;
            }
        });
    }
}

/// The broker answers as itself, so the answer may go only where the
/// requester could publish: the ACL (when there is one) is asked for it.
fn may_answer(engine: &Engine, client: Option<&Client>, topic: &str) -> bool {
    match (engine.acl.load().as_deref(), client) {
        (Some(acl), Some(client)) => acl.can_publish(client.id(), client.username(), topic),
        _ => true,
    }
}
