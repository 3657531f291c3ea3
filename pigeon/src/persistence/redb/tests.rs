//! The store on real files: what is written comes back after a reopen, and
//! every bad file stops the open with an error naming it.

use std::{path::PathBuf, time::Duration};

use pigeon_codec::{Publish, QoS, SubscriptionOptions, Will};

use super::*;
use crate::model::{Delivery, Inflight, Message};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pigeon-redb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client id as sessions share it.
fn id(client: &str) -> Arc<str> {
    Arc::from(client)
}

fn limits() -> QueueLimits {
    QueueLimits {
        messages: 100,
        bytes: 1 << 20,
        drain_timeout: Duration::from_secs(5),
    }
}

fn delivery(topic: &str, payload: &'static str, qos: QoS) -> Delivery {
    let mut d = Delivery::new(
        Message::new(Publish::new(topic, qos, payload), None),
        qos,
        false,
    );
    d.identifiers = Box::new([7]);
    d
}

#[tokio::test]
async fn what_is_committed_comes_back_after_a_reopen() {
    let path = dir("reopen").join("store.redb");
    {
        let store = RedbPersistence::open(&path, Durability::Sync).unwrap();
        let mut retained = Publish::new("r/1", QoS::AtLeastOnce, "kept");
        retained.retain = true;
        store.store_retained(Message::new(retained, None)).await;
        let sub = StoredSubscription {
            filter: "a/+".into(),
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                ..Default::default()
            },
            identifier: Some(42),
        };
        store.add_subscriptions("c1", vec![sub]).await;
        store
            .put_will(
                "c1",
                Will {
                    topic: "w".into(),
                    payload: "bye".into(),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    properties: Default::default(),
                },
            )
            .await;
        store.save_session(
            "c1",
            SessionState {
                expiry_interval: 3600,
                offline_since: Some(SystemTime::now()),
                username: Some("ann".into()),
                protocol: pigeon_codec::Protocol::V5,
            },
        );
        // Online: journaled, then sent with id 9, then one more acknowledged.
        let sent = delivery("a/b", "in flight", QoS::ExactlyOnce);
        let key = store.journal(&id("c1"), &sent);
        store.sent(&id("c1"), key, 9);
        store.released(&id("c1"), key);
        let acked = delivery("a/b", "acked", QoS::AtLeastOnce);
        let gone = store.journal(&id("c1"), &acked);
        store.forget(&id("c1"), gone);
        store.incoming_qos2(&id("c1"), 5, true);
        assert!(
            store
                .enqueue(
                    "c1".into(),
                    delivery("a/c", "queued", QoS::AtLeastOnce),
                    limits()
                )
                .await
        );
        assert!(store.commit().await);
    }
    let store = RedbPersistence::open(&path, Durability::Sync).unwrap();
    let retained = store.retained("r/#").await;
    assert_eq!(retained.len(), 1);
    assert_eq!(&retained[0].publish.payload[..], b"kept");
    let subs = store.subscriptions("c1").await;
    assert_eq!(subs.len(), 1);
    assert_eq!(
        (subs[0].filter.as_str(), subs[0].identifier),
        ("a/+", Some(42))
    );
    assert!(subs[0].options.no_local);
    assert_eq!(subs[0].options.qos, QoS::ExactlyOnce);
    let sessions = store.sessions().await;
    let c1 = sessions.iter().find(|s| s.client_id == "c1").unwrap();
    let state = c1.state.as_ref().unwrap();
    assert_eq!(
        (state.expiry_interval, state.username.as_deref()),
        (3600, Some("ann"))
    );
    let parked = store.unpark("c1").await;
    assert_eq!(parked.inflight.len(), 1, "the acknowledged copy is gone");
    let inflight = &parked.inflight[0];
    assert_eq!((inflight.packet_id, inflight.released), (9, true));
    assert_eq!(&inflight.delivery.message.publish.payload[..], b"in flight");
    assert_eq!(&*inflight.delivery.identifiers, &[7]);
    assert_eq!(parked.queued.len(), 1);
    assert_eq!(&parked.queued[0].message.publish.payload[..], b"queued");
    assert_eq!(parked.incoming_qos2, vec![5]);
    assert_eq!(store.take_will("c1").await.unwrap().topic, "w");
}

#[tokio::test]
async fn park_replaces_the_copies_and_remove_session_forgets_them() {
    let path = dir("park").join("store.redb");
    {
        let store = RedbPersistence::open(&path, Durability::Sync).unwrap();
        let mut a = delivery("t", "a", QoS::AtLeastOnce);
        a.stored = Some(store.journal(&id("c"), &a));
        let mut b = delivery("t", "b", QoS::AtLeastOnce);
        b.stored = Some(store.journal(&id("c"), &b));
        // The connection left with `a` in flight (id 3) and `b` queued.
        let parked = Parked {
            inflight: vec![Inflight {
                packet_id: 3,
                delivery: a,
                released: false,
            }],
            queued: [b].into(),
            incoming_qos2: vec![],
        };
        store.park("c", parked).await;
        store
            .add_subscriptions(
                "gone",
                vec![StoredSubscription {
                    filter: "x".into(),
                    options: SubscriptionOptions::default(),
                    identifier: None,
                }],
            )
            .await;
        let g = delivery("x", "g", QoS::AtLeastOnce);
        store.journal(&id("gone"), &g);
        store.remove_session("gone").await;
        assert!(store.commit().await);
    }
    let store = RedbPersistence::open(&path, Durability::Window(Duration::from_millis(5))).unwrap();
    let parked = store.unpark("c").await;
    assert_eq!(parked.inflight.len(), 1);
    assert_eq!(parked.inflight[0].packet_id, 3);
    assert_eq!(parked.queued.len(), 1);
    assert!(store.sessions().await.iter().all(|s| s.client_id != "gone"));
    assert!(store.unpark("gone").await.queued.is_empty());
}

/// Shutdown's flush: inside a commit window far longer than the test, a
/// flush resolves only once the window's changes are committed, at once.
#[tokio::test]
async fn flush_commits_at_once_inside_a_long_commit_window() {
    let path = dir("flush").join("store.redb");
    {
        let store =
            RedbPersistence::open(&path, Durability::Window(Duration::from_secs(600))).unwrap();
        let mut retained = Publish::new("r/1", QoS::AtLeastOnce, "kept");
        retained.retain = true;
        store.store_retained(Message::new(retained, None)).await;
        assert!(store.commit().await, "acknowledged without waiting");
        let started = std::time::Instant::now();
        let flushed = tokio::time::timeout(Duration::from_secs(20), store.flush())
            .await
            .expect("the flush does not wait for the window");
        assert!(flushed);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let store = RedbPersistence::open(&path, Durability::Sync).unwrap();
    assert_eq!(store.retained("r/1").await.len(), 1);
}

#[test]
fn a_missing_directory_is_named() {
    let path = dir("missing").join("no/such/dir/store.redb");
    let err = RedbPersistence::open(&path, Durability::Sync)
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::MissingDirectory { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_kept() {
    let path = dir("garbage").join("notes.txt");
    let text = "these are my notes, not a store\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = RedbPersistence::open(&path, Durability::Sync)
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "never reset");
}

#[test]
fn another_programs_database_is_refused() {
    let path = dir("foreign").join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let write = db.begin_write().unwrap();
        let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("accounts");
        write.open_table(table).unwrap().insert("ann", 7).unwrap();
        write.commit().unwrap();
    }
    let err = RedbPersistence::open(&path, Durability::Sync)
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::NotPigeon { .. }), "{err}");
    assert!(err.to_string().contains("other.redb"), "{err}");
}

#[test]
fn a_newer_format_is_refused() {
    let path = dir("newer").join("store.redb");
    drop(RedbPersistence::open(&path, Durability::Sync).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        format::write_version(&db, format::FORMAT + 1).unwrap();
    }
    let err = RedbPersistence::open(&path, Durability::Sync)
        .err()
        .unwrap();
    match &err {
        StoreError::NewerFormat {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (format::FORMAT + 1, format::FORMAT));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("store.redb"), "{err}");
}

#[tokio::test]
async fn a_version_1_store_opens_and_keeps_its_data() {
    // Written as version 1 lays it out, by hand: the upgrade path starts here.
    let path = dir("v1").join("store.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        format::write_version(&db, 1).unwrap();
        let write = db.begin_write().unwrap();
        let mut retained = Publish::new("v1/t", QoS::AtMostOnce, "old");
        retained.retain = true;
        let record = records::retained(&Message::new(retained, None));
        write
            .open_table(format::RETAINED)
            .unwrap()
            .insert("v1/t", &record[..])
            .unwrap();
        write.commit().unwrap();
    }
    let store = RedbPersistence::open(&path, Durability::Sync).unwrap();
    let retained = store.retained("v1/#").await;
    assert_eq!(&retained[0].publish.payload[..], b"old");
}

#[test]
fn a_corrupted_record_is_named() {
    let path = dir("corrupt").join("store.redb");
    drop(RedbPersistence::open(&path, Durability::Sync).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let write = db.begin_write().unwrap();
        write
            .open_table(format::RETAINED)
            .unwrap()
            .insert("bad/topic", &b"\x00\x01"[..])
            .unwrap();
        write.commit().unwrap();
    }
    let err = RedbPersistence::open(&path, Durability::Sync)
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("store.redb") && text.contains("bad/topic"),
        "{text}"
    );
}

#[tokio::test]
async fn deleted_messages_do_not_make_the_file_grow() {
    let path = dir("size").join("store.redb");
    let store = RedbPersistence::open(&path, Durability::Sync).unwrap();
    let payload: &'static str = Box::leak("x".repeat(1024).into_boxed_str());
    let mut sizes = Vec::new();
    for _round in 0..6 {
        let keys: Vec<u64> = (0..2000)
            .map(|_| store.journal(&id("c"), &delivery("t", payload, QoS::AtLeastOnce)))
            .collect();
        assert!(store.commit().await);
        for key in keys {
            store.forget(&id("c"), key);
        }
        assert!(store.commit().await);
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    // 2 MB go in and out each round: the space is reused, not appended.
    let first = sizes[0];
    assert!(first > 2_000_000, "{sizes:?}");
    assert!(
        *sizes.last().unwrap() <= first * 2,
        "the file grew: {sizes:?}"
    );
}
