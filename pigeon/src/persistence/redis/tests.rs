//! The store against a real `redis-server` (skipped when none is installed:
//! `scripts/test` installs it).

use std::{net::TcpListener, process::Child, sync::Arc, time::Duration};

use pigeon_codec::{Publish, QoS};

use super::*;

/// A `redis-server` on a free port, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> Option<Server> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    Some(Server {
        child,
        url: format!("redis://127.0.0.1:{port}/0"),
    })
}

fn delivery(payload: &'static str) -> Delivery {
    Delivery::new(
        Message::new(Publish::new("t", QoS::AtLeastOnce, payload), None),
        QoS::AtLeastOnce,
        false,
    )
}

fn limit(messages: usize) -> QueueLimits {
    QueueLimits {
        messages,
        bytes: usize::MAX,
        drain_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn queues_sessions_and_retained_messages_are_shared_through_redis() {
    let Some(server) = server() else {
        eprintln!("redis-server not installed: skipped");
        return;
    };
    let a = RedisPersistence::connect(&server.url, "a")
        .await
        .expect("connects");
    let b = RedisPersistence::connect(&server.url, "b")
        .await
        .expect("connects");

    let mut publish = Publish::new("r/1", QoS::AtMostOnce, "x");
    publish.retain = true;
    assert_eq!(a.store_retained(Message::new(publish, None)).await, 1);
    assert_eq!(
        b.retained("r/+").await.len(),
        1,
        "node b sees node a's retained message"
    );
    assert_eq!(b.retained("r/1").await.len(), 1);

    let id: Arc<str> = Arc::from("c");
    assert!(a.enqueue(id.clone(), delivery("1"), limit(2)).await);
    assert!(a.enqueue(id.clone(), delivery("2"), limit(2)).await);
    assert!(
        !a.enqueue(id.clone(), delivery("3"), limit(2)).await,
        "limit 2"
    );
    let state = SessionState {
        expiry_interval: 100,
        offline_since: Some(SystemTime::now()),
        username: None,
        protocol: pigeon_codec::Protocol::V5,
    };
    a.save_session("c", state);
    assert!(a.commit().await);
    let stored = b.load_session("c").await.expect("b loads the session");
    assert_eq!(stored.state.map(|s| s.expiry_interval), Some(100));
    let parked = b.unpark("c").await;
    let payloads: Vec<_> = parked
        .queued
        .iter()
        .map(|d| String::from_utf8_lossy(&d.message.publish.payload).into_owned())
        .collect();
    assert_eq!(payloads, ["1", "2"]);
    assert!(b.load_session("nobody").await.is_none());
    assert!(a.health().is_ok());
}
