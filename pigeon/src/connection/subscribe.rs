//! SUBSCRIBE and UNSUBSCRIBE: ACL, authorize-subscribe, the topic tree,
//! SUBACK / UNSUBACK, events, `$SYS` notices and retained messages.

use pigeon_codec::{
    topic, Packet, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use pigeon_codec::{AckProperties, ReasonCode};

use super::{Connection, Exit};
use crate::hooks::guard;
use crate::{
    hooks::{Event, EventKind, Subscription},
    model::Delivery,
};

impl Connection {
    /// `Err` for the protocol errors that end the connection: no-local on a
    /// shared subscription (MQTT-3.8.3-4) and a subscription identifier when
    /// the broker does not offer them (3.2.2.3.12: DISCONNECT 0xA1).
    pub(super) async fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Exit> {
        let engine = self.engine.clone();
        let v5 = self.mqtt.v5();
        let identifier = subscribe.properties.subscription_identifier;
        if identifier.is_some() && !engine.config.subscription_identifiers_available {
            return Err(Exit::Violation(
                ReasonCode::SubscriptionIdentifiersNotSupported,
                "subscription identifiers are not available".into(),
            ));
        }
        if v5
            && subscribe
                .filters
                .iter()
                .any(|f| f.options.no_local && topic::parse_shared(&f.filter).is_some())
        {
            return Err(Exit::Violation(
                ReasonCode::ProtocolError,
                "no local on a shared subscription".into(),
            ));
        }
        let refused = |code: ReasonCode| {
            if v5 {
                code
            } else {
                ReasonCode::UnspecifiedError
            }
        };
        // Filters by position, for a reason string naming the refused ones.
        let names: Vec<String> = match self.mqtt.reason_string(String::new) {
            Some(_) => subscribe.filters.iter().map(|f| f.filter.clone()).collect(),
            None => Vec::new(),
        };
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut granted = Vec::new();
        // (filter, options, new) of each granted subscription, for retained messages.
        let mut retained_for = Vec::new();
        for entry in subscribe.filters {
            let shared = topic::parse_shared(&entry.filter);
            if shared.is_some() && !engine.config.shared_subscription_available {
                codes.push(refused(ReasonCode::SharedSubscriptionsNotSupported));
                continue;
            }
            // The ACL speaks of the filter itself, not of its share group.
            let plain = shared.map_or(&*entry.filter, |(_, inner)| inner);
            if super::inbound::too_deep(plain, engine.config.max_topic_levels) {
                codes.push(refused(ReasonCode::TopicFilterInvalid));
                continue;
            }
            let wildcard = plain.contains(['+', '#']);
            if wildcard && !engine.config.wildcard_subscription_available {
                codes.push(refused(ReasonCode::WildcardSubscriptionsNotSupported));
                continue;
            }
            if let Some(acl) = engine.acl.load().as_deref() {
                if !acl.can_subscribe(&self.client_id, self.client.username(), plain) {
                    codes.push(refused(ReasonCode::NotAuthorized));
                    continue;
                }
            }
            let sub = Subscription {
                topic: entry.filter,
                qos: entry.options.qos,
                options: entry.options,
            };
            let sub = match guard(engine.hooks.authorize_subscribe(&self.client, sub)).await {
                Ok(Ok(Some(sub))) if topic::valid_topic_filter(&sub.topic) => sub,
                Ok(Ok(_)) => {
                    codes.push(refused(ReasonCode::UnspecifiedError));
                    continue;
                }
                Ok(Err(denied)) => {
                    engine.event(EventKind::ClientError, || {
                        Event::ClientError(self.client.clone(), denied.message.clone())
                    });
                    codes.push(refused(denied.reason));
                    continue;
                }
                Err(panic) => {
                    engine.event(EventKind::ClientError, || {
                        Event::ClientError(self.client.clone(), panic.clone())
                    });
                    codes.push(refused(ReasonCode::UnspecifiedError));
                    continue;
                }
            };
            if self.over_subscription_quota(&sub.topic) {
                codes.push(refused(ReasonCode::QuotaExceeded));
                continue;
            }
            let qos = sub.qos.min(engine.config.maximum_qos);
            let options = SubscriptionOptions { qos, ..sub.options };
            let new = engine
                .add_subscription(
                    &self.session,
                    &sub.topic,
                    options,
                    identifier,
                    self.persistent,
                )
                .await;
            codes.push(ReasonCode::granted(qos));
            retained_for.push((sub.topic.clone(), options, new));
            granted.push(Subscription {
                qos,
                options,
                ..sub
            });
        }
        let properties = AckProperties {
            reason_string: refusals(&names, &codes),
            ..AckProperties::default()
        };
        let reason_codes = codes.clone();
        let packet_id = subscribe.packet_id;
        if !self.write(&Packet::SubAck(SubAck {
            packet_id,
            reason_codes: codes,
            properties,
        })) {
            // Too large for the client with the reason string: send it bare.
            self.write(&Packet::SubAck(SubAck {
                packet_id,
                reason_codes,
                properties: AckProperties::default(),
            }));
        }
        if !granted.is_empty() {
            crate::engine::sys::new_subscribers(&engine, &self.client_id, &granted).await;
            engine.event(EventKind::Subscribe, || {
                Event::Subscribe(self.client.clone(), granted)
            });
        }
        if engine.config.retain_available {
            for (filter, options, new) in retained_for {
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
                for message in engine.persistence.retained(&filter).await {
                    let qos = message.publish.qos.min(options.qos);
                    let mut delivery = Delivery::new(message, qos, true);
                    delivery.identifiers.extend(identifier);
                    self.session.push(delivery);
                }
            }
        }
        Ok(())
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
        crate::engine::sys::new_unsubscribers(&engine, &self.client_id, &unsubscribe.filters).await;
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
