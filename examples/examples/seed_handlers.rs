//! The seed's `TestService`: every handler and event of its documents, behaving
//! as their snippets say.
//!
//! `cargo run --release --example seed_handlers -- --port 1884`

use clap::Parser;
use pigeon::prelude::*;
use tracing::info;

#[injectable]
pub(crate) struct TestService {
    pigeon: PigeonService,
}

#[handlers]
impl TestService {
    #[on_pre_connect]
    async fn on_pre_connect(&self, client: Client, packet: Packet<Connect>) -> bool {
        info!(client = client.id(), protocol = ?packet.0.protocol, "Function: @onPreConnect()");
        true
    }

    #[on_authenticate]
    async fn on_authenticate(
        &self,
        client: Client,
        credential: Credential,
    ) -> Result<(), AuthError> {
        info!(client = client.id(), username = ?credential.username, "Function: @onAuthenticate()");
        Ok(())
    }

    #[on_authorize_publish]
    async fn on_authorize_publish(
        &self,
        client: Option<Client>,
        packet: &mut Publish,
    ) -> Result<(), Denied> {
        info!(client = ?client.as_ref().map(Client::id), topic = %packet.topic, "Function: @onAuthorizePublish()");
        if packet.topic == "aaaa" {
            return Err(Denied::new("wrong topic"));
        }
        if packet.topic == "bbb" {
            packet.payload = "overwrite packet payload".into();
        }
        Ok(())
    }

    #[on_authorize_subscribe]
    async fn on_authorize_subscribe(
        &self,
        client: Client,
        mut subscription: Subscription,
    ) -> Result<Option<Subscription>, Denied> {
        info!(client = client.id(), topic = %subscription.topic, "Function: @onAuthorizeSubscribe()");
        if subscription.topic == "aaaa" {
            return Err(Denied::new("wrong topic"));
        }
        if subscription.topic == "bbb" {
            // overwrites subscription
            subscription.topic = "foo".into();
            subscription.set_qos(QoS::AtLeastOnce);
        }
        Ok(Some(subscription))
    }

    #[on_published]
    async fn on_published(&self, topic: Topic, client: Option<Client>) {
        info!(client = ?client.as_ref().map(Client::id), topic = &*topic, "Function: @onPublished()");
    }

    #[on_client]
    async fn on_new_client(&self, client: Client) {
        info!(client = client.id(), "Function: @onClient()");
    }

    #[on_client_ready]
    async fn on_client_ready(&self, client: Client) {
        info!(client = client.id(), "Function: @onClientReady()");
    }

    #[on_client_disconnect]
    async fn on_client_disconnect(&self, client: Client) {
        info!(client = client.id(), "Function: @OnClientDisconnect()");
    }

    #[on_client_error]
    async fn on_client_error(&self, client: Client, error: Error) {
        info!(client = client.id(), %error, "Function: @onClientError()");
    }

    #[on_connection_error]
    async fn on_connection_error(&self, client: Client, error: Error) {
        info!(client = client.id(), %error, "Function: @OnConnectionError()");
    }

    #[on_keepalive_timeout]
    async fn on_keepalive_timeout(&self, client: Client) {
        info!(client = client.id(), "Function: @onKeepLiveTimeout()");
    }

    #[on_publish]
    async fn on_publish(
        &self,
        topic: Topic,
        packet: Packet<Publish>,
        payload: Payload,
        client: Option<Client>,
    ) {
        info!(client = ?client.as_ref().map(Client::id), topic = &*topic, qos = ?packet.0.qos, bytes = payload.len(), "Function: @OnPublish()");
        if &*topic == "ping" {
            let pong = Publish::new("test2", QoS::AtMostOnce, "pong");
            if let Err(e) = self.pigeon.publish(pong).await {
                tracing::warn!("pong failed: {e:#}");
            }
        }
    }

    #[on_ack]
    async fn on_ack(&self, client: Client, packet: Packet<Publish>) {
        info!(client = client.id(), topic = %packet.0.topic, "Function: @onAck()");
    }

    #[on_subscribe]
    async fn on_subscribe(&self, subscriptions: Subscriptions, client: Client) {
        let topics: Vec<_> = subscriptions.0.iter().map(|s| s.topic.as_str()).collect();
        info!(client = client.id(), ?topics, "Function: @OnSubscribe()");
    }

    #[on_unsubscribe]
    async fn on_unsubscribe(&self, unsubscriptions: Unsubscriptions, client: Client) {
        info!(client = client.id(), topics = ?unsubscriptions.0, "Function: @OnUnsubscribe()");
    }

    #[on_connack_sent]
    async fn on_connack_sent(&self, client: Client, packet: Packet<ConnAck>) {
        info!(client = client.id(), reason = ?packet.0.reason_code, "Function: @onConnackSent()");
    }

    #[on_closed]
    async fn on_closed(&self) {
        info!("Function: @onClosed()");
    }
}

#[module(
    port = 1884,
    id = "binarybeast",
    concurrency = 100,
    queue_limit = 42,
    max_clients_id_length = 23,
    connect_timeout = 30000,
    heartbeat_interval = 60000,
    persistence = memory,
    emitter = local,
    providers = [TestService]
)]
pub(crate) struct AppModule;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = pigeon_examples::Args::parse();
    pigeon_examples::serve::<AppModule>(&args).await
}
