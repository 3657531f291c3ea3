//! SUBSCRIBE and UNSUBSCRIBE: ACL, authorize-subscribe, the topic tree,
//! SUBACK / UNSUBACK, events, `$SYS` notices and retained messages.

use pigeon_codec::{
    topic, Packet, RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions,
    UnsubAck, Unsubscribe,
};
use pigeon_codec::{AckProperties, ReasonCode};

use super::{Connection, Exit};
use crate::hooks::guard;
use crate::{
    hooks::{Event, EventKind, Subscription},
    model::Delivery,
};

/// A granted subscription, for its retained messages: the filter, the
/// options granted, and whether it is new (not a replacement).
type Granted = (String, SubscriptionOptions, bool);

impl Connection {
    /// `Err` for the protocol errors that end the connection: no-local on a
    /// shared subscription (MQTT-3.8.3-4) and a subscription identifier when
    /// the broker does not offer them (3.2.2.3.12: DISCONNECT 0xA1).
    pub(super) async fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Exit> {
        self.check_subscribe(&subscribe)?;
        let identifier = subscribe.properties.subscription_identifier;
        // Filters by position, for a reason string naming the refused ones.
        let names: Vec<String> = match self.mqtt.reason_string(String::new) {
            Some(_) => subscribe.filters.iter().map(|f| f.filter.clone()).collect(),
            None => Vec::new(),
        };
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut granted = Vec::new();
        let mut retained_for = Vec::new();
        for entry in subscribe.filters {
            match self.subscribe_one(entry, identifier).await {
                Ok((sub, new)) => {
                    codes.push(ReasonCode::granted(sub.qos()));
                    retained_for.push((sub.topic.clone(), sub.options, new));
                    granted.push(sub);
                }
                // MQTT 3.x SUBACK has one failure code.
                Err(code) if self.mqtt.v5() => codes.push(code),
                Err(_) => codes.push(ReasonCode::UnspecifiedError),
            }
        }
        self.send_suback(subscribe.packet_id, &names, codes);
        if !granted.is_empty() {
            let engine = &self.engine;
            crate::engine::sys::new_subscribers(engine, &self.session.client_id, &granted).await;
            engine.event(EventKind::Subscribe, || {
                Event::Subscribe(self.client.clone(), granted)
            });
        }
        self.queue_retained(retained_for, identifier).await;
        Ok(())
    }

    /// The protocol errors of a SUBSCRIBE as a whole.
    fn check_subscribe(&self, subscribe: &Subscribe) -> Result<(), Exit> {
        let identifier = subscribe.properties.subscription_identifier;
        if identifier.is_some() && !self.engine.config.subscription_identifiers_available {
            return Err(Exit::Violation(
                ReasonCode::SubscriptionIdentifiersNotSupported,
                "subscription identifiers are not available".into(),
            ));
        }
        let no_local_shared =
            |f: &SubscribeFilter| f.options.no_local && topic::parse_shared(&f.filter).is_some();
        if self.mqtt.v5() && subscribe.filters.iter().any(no_local_shared) {
            return Err(Exit::Violation(
                ReasonCode::ProtocolError,
                "no local on a shared subscription".into(),
            ));
        }
        Ok(())
    }

    /// Grants one filter (the broker's features, the ACL, authorize_subscribe,
    /// the quota): the subscription as granted and whether it is new, or the
    /// MQTT 5.0 code that refuses it.
    async fn subscribe_one(
        &mut self,
        entry: SubscribeFilter,
        identifier: Option<u32>,
    ) -> Result<(Subscription, bool), ReasonCode> {
        let stats = &self.engine.stats;
        if let Err(code) = self.check_filter(&entry.filter) {
            if code == ReasonCode::NotAuthorized {
                stats.authorization.count(false);
            }
            return Err(code);
        }
        let authorized = self.authorize_filter(entry).await;
        self.engine.stats.authorization.count(authorized.is_ok());
        let sub = authorized?;
        if self.over_subscription_quota(&sub.topic) {
            return Err(ReasonCode::QuotaExceeded);
        }
        let qos = sub.qos().min(self.engine.config.maximum_qos);
        let options = SubscriptionOptions { qos, ..sub.options };
        let new = self
            .engine
            .add_subscription(
                &self.session,
                &sub.topic,
                options,
                identifier,
                self.persistent,
            )
            .await;
        Ok((Subscription { options, ..sub }, new))
    }

    /// The broker's features and the ACL. The ACL speaks of the filter
    /// itself, not of its share group.
    fn check_filter(&self, filter: &str) -> Result<(), ReasonCode> {
        let config = &self.engine.config;
        let shared = topic::parse_shared(filter);
        if shared.is_some() && !config.shared_subscription_available {
            return Err(ReasonCode::SharedSubscriptionsNotSupported);
        }
        let plain = shared.map_or(filter, |(_, inner)| inner);
        if super::inbound::too_deep(plain, config.max_topic_levels) {
            return Err(ReasonCode::TopicFilterInvalid);
        }
        if plain.contains(['+', '#']) && !config.wildcard_subscription_available {
            return Err(ReasonCode::WildcardSubscriptionsNotSupported);
        }
        let (client_id, username) = (&self.session.client_id, self.client.username());
        if !self
            .engine
            .acl_allows(|acl| acl.can_subscribe(client_id, username, plain))
        {
            return Err(ReasonCode::NotAuthorized);
        }
        Ok(())
    }

    /// The authorize_subscribe handlers' decision; they may rewrite the
    /// subscription, but not into an invalid filter.
    async fn authorize_filter(
        &mut self,
        entry: SubscribeFilter,
    ) -> Result<Subscription, ReasonCode> {
        let sub = Subscription::with_options(entry.filter, entry.options);
        let (code, message) =
            match guard(self.engine.hooks.authorize_subscribe(&self.client, sub)).await {
                Ok(Ok(Some(sub))) if topic::valid_topic_filter(&sub.topic) => return Ok(sub),
                Ok(Ok(_)) => return Err(ReasonCode::UnspecifiedError),
                Ok(Err(denied)) => (denied.reason, denied.message),
                Err(panic) => (ReasonCode::UnspecifiedError, panic),
            };
        self.engine.event(EventKind::ClientError, || {
            Event::ClientError(self.client.clone(), message.clone())
        });
        Err(code)
    }

    /// SUBACK, naming the refused filters when the client wants reasons (and
    /// bare if the client's Maximum Packet Size cannot take them).
    fn send_suback(&mut self, packet_id: u16, names: &[String], codes: Vec<ReasonCode>) {
        let properties = AckProperties {
            reason_string: refusals(names, &codes),
            ..AckProperties::default()
        };
        let reason_codes = codes.clone();
        if !self.write(&Packet::SubAck(SubAck {
            packet_id,
            reason_codes: codes,
            properties,
        })) {
            self.write(&Packet::SubAck(SubAck {
                packet_id,
                reason_codes,
                properties: AckProperties::default(),
            }));
        }
    }

    /// Queues the retained messages the new subscriptions ask for.
    async fn queue_retained(&mut self, granted: Vec<Granted>, identifier: Option<u32>) {
        if !self.engine.config.retain_available {
            return;
        }
        for (filter, options, new) in granted {
            // No retained messages for a shared subscription (MQTT 5.0 4.8.2).
            if topic::parse_shared(&filter).is_some() {
                continue;
            }
            let send = match options.retain_handling {
                RetainHandling::OnSubscribe => true,
                RetainHandling::OnNewSubscribe => new,
                RetainHandling::Never => false,
            };
            if !send {
                continue;
            }
            for message in self.engine.persistence.retained(&filter).await {
                let qos = message.publish.qos.min(options.qos);
                let mut delivery = Delivery::new(message, qos, true);
                delivery.identifiers = identifier.into_iter().collect();
                self.session.push(delivery);
            }
        }
    }

    /// Whether a new subscription to `filter` would exceed
    /// `max_subscriptions_per_client` (replacing one held already never does).
    fn over_subscription_quota(&self, filter: &str) -> bool {
        let limit = self.engine.config.max_subscriptions_per_client;
        limit != 0
            && !self.session.has_subscription(filter)
            && self.session.subscription_count() >= limit
    }

    pub(super) async fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let engine = self.engine.clone();
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let existed = engine
                .remove_subscription(&self.session, filter, self.persistent)
                .await;
            codes.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        if !self.mqtt.v5() {
            codes.clear();
        }
        let properties = AckProperties {
            reason_string: self
                .mqtt
                .reason_string(String::new)
                .and_then(|_| not_removed(&unsubscribe.filters, &codes)),
            ..AckProperties::default()
        };
        let packet_id = unsubscribe.packet_id;
        let explained = properties.reason_string.is_some();
        if !self.write(&Packet::UnsubAck(UnsubAck {
            packet_id,
            reason_codes: codes.clone(),
            properties,
        })) && explained
        {
            // Too large for the client with the reason string: send it bare.
            self.write(&Packet::UnsubAck(UnsubAck {
                packet_id,
                reason_codes: codes,
                properties: AckProperties::default(),
            }));
        }
        crate::engine::sys::new_unsubscribers(
            &engine,
            &self.session.client_id,
            &unsubscribe.filters,
        )
        .await;
        engine.event(EventKind::Unsubscribe, || {
            Event::Unsubscribe(self.client.clone(), unsubscribe.filters)
        });
    }
}

/// "refused a/# (NotAuthorized), ..." for the refused filters; `None` when
/// none was refused or no names were kept (the client opted out).
fn refusals(names: &[String], codes: &[ReasonCode]) -> Option<String> {
    let refused: Vec<String> = names
        .iter()
        .zip(codes)
        .filter(|(_, code)| code.is_error())
        .map(|(name, code)| format!("{name} ({code:?})"))
        .collect();
    (!refused.is_empty()).then(|| format!("refused {}", refused.join(", ")))
}

/// "nothing removed for a/b (NoSubscriptionExisted), ..." for the filters an
/// UNSUBSCRIBE did not remove; `None` when every one was removed. 0x11 is no
/// error, but it is the answer a client is most likely to puzzle over.
fn not_removed(filters: &[String], codes: &[ReasonCode]) -> Option<String> {
    let missed: Vec<String> = filters
        .iter()
        .zip(codes)
        .filter(|(_, code)| code.is_error() || **code == ReasonCode::NoSubscriptionExisted)
        .map(|(name, code)| format!("{name} ({code:?})"))
        .collect();
    (!missed.is_empty()).then(|| format!("nothing removed for {}", missed.join(", ")))
}
