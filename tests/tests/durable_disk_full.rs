//! A durable store on a full disk (a small tmpfs, so the disk really fills):
//! publishers that need the disk are refused (MQTT 5: PUBACK 0x97), the error
//! is logged, everything that does not need the disk keeps working, and
//! service resumes once there is room again.

mod v5_common;

use std::{path::PathBuf, process::Command, time::Duration};

use pigeon::{
    codec::{Publish, QoS, ReasonCode},
    config::Store,
    Config,
};
use pigeon_tests::{config, start_with};
use v5_common::*;

/// A tmpfs of `size` mounted for the test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("pigeon-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill a disk for real, and needs root \
             (or CAP_SYS_ADMIN) for it: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn big(topic: &str, id: u16) -> Publish {
    let mut p = Publish::new(topic, QoS::AtLeastOnce, vec![b'x'; 8 * 1024]);
    p.packet_id = id;
    p
}

#[tokio::test]
async fn a_full_disk_refuses_what_needs_it_serves_the_rest_and_recovers() {
    let disk = SmallDisk::mount("2m");
    // Room to fill later: a ballast file that is deleted to free the disk.
    let ballast = disk.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1024 * 1024]).unwrap();
    let broker = start_with(Config {
        persistence: Store::Redb(disk.0.join("store.redb")),
        max_queued_messages: 100_000,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut away = connect("away");
    away.clean_start = false;
    away.properties.session_expiry_interval = Some(3600);
    let (mut sub, _) = connected(addr, away.clone()).await;
    subscribe(&mut sub, "stored/#", QoS::AtLeastOnce).await;
    drop(sub);
    let (mut live, _) = connected(addr, connect("live")).await;
    subscribe(&mut live, "live/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(addr, connect("pub")).await;

    // Fill the disk with messages for the offline persistent session.
    let mut refused = None;
    for id in 1..=400u16 {
        let ack = publish_acked(&mut publisher, big("stored/m", id)).await;
        if ack.reason_code != ReasonCode::Success {
            refused = Some((id, ack.reason_code));
            break;
        }
    }
    let (at, code) = refused.expect("the disk filled and a publisher was refused");
    assert!(at > 1, "the first messages fitted");
    assert_eq!(code, ReasonCode::QuotaExceeded);

    // What needs no disk still works: QoS 1 to an online clean session.
    let ack = publish_acked(&mut publisher, big("live/x", 1000)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert_eq!(&*next_publish(&mut live).await.topic, "live/x");

    // Room again: publishers that need the disk are accepted again.
    std::fs::remove_file(&ballast).unwrap();
    let mut recovered = false;
    for id in 2000..2100u16 {
        let ack = publish_acked(&mut publisher, big("stored/m", id)).await;
        if ack.reason_code == ReasonCode::Success {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the store did not come back once the disk had room"
    );
    broker.close().await;
}
