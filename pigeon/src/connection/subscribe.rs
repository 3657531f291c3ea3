//! SUBSCRIBE and UNSUBSCRIBE: ACL, authorize-subscribe, the topic tree,
//! SUBACK / UNSUBACK, events, `$SYS` notices and retained messages.

use pigeon_codec::{
    topic, Packet, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use pigeon_codec::{AckProperties, ReasonCode};

use super::{guard, Connection};
use crate::{
    broker::Delivery,
    hooks::{Event, EventKind, Subscription},
};

impl Connection {
    pub(super) async fn on_subscribe(&mut self, subscribe: Subscribe) {
        let engine = self.engine.clone();
        let v5 = self.protocol.is_v5();
        let refused = |code: ReasonCode| {
            if v5 {
                code
            } else {
                ReasonCode::UnspecifiedError
            }
        };
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut granted = Vec::new();
        // (filter, options, new) of each granted subscription, for retained messages.
        let mut retained_for = Vec::new();
        for entry in subscribe.filters {
            if topic::parse_shared(&entry.filter).is_some() {
                codes.push(refused(ReasonCode::SharedSubscriptionsNotSupported));
                continue;
            }
            let wildcard = entry.filter.contains(['+', '#']);
            if wildcard && !engine.config.wildcard_subscription_available {
                codes.push(refused(ReasonCode::WildcardSubscriptionsNotSupported));
                continue;
            }
            if let Some(acl) = &engine.acl {
                if !acl.can_subscribe(&self.client_id, self.client.username(), &entry.filter) {
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
            let qos = sub.qos.min(engine.config.maximum_qos);
            let options = SubscriptionOptions { qos, ..sub.options };
            let new = engine
                .add_subscription(&self.session, &sub.topic, options, self.persistent)
                .await;
            codes.push(ReasonCode::granted(qos));
            retained_for.push((sub.topic.clone(), options, new));
            granted.push(Subscription {
                qos,
                options,
                ..sub
            });
        }
        self.write(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes: codes,
            properties: AckProperties::default(),
        }));
        if !granted.is_empty() {
            crate::sys::new_subscribers(&engine, &self.client_id, &granted).await;
            engine.event(EventKind::Subscribe, || {
                Event::Subscribe(self.client.clone(), granted)
            });
        }
        if engine.config.retain_available {
            for (filter, options, new) in retained_for {
                let send = match options.retain_handling {
                    RetainHandling::OnSubscribe => true,
                    RetainHandling::OnNewSubscribe => new,
                    RetainHandling::Never => false,
                };
                if !send {
                    continue;
                }
                for message in engine.persistence.retained(&filter).await {
                    self.session.push(Delivery {
                        qos: message.publish.qos.min(options.qos),
                        retain: true,
                        message,
                    });
                }
            }
        }
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
        if !self.protocol.is_v5() {
            codes.clear();
        }
        self.write(&Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            reason_codes: codes,
            properties: AckProperties::default(),
        }));
        crate::sys::new_unsubscribers(&engine, &self.client_id, &unsubscribe.filters).await;
        engine.event(EventKind::Unsubscribe, || {
            Event::Unsubscribe(self.client.clone(), unsubscribe.filters)
        });
    }
}
