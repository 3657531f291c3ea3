//! Password files end to end: a file made by Debian's real `mosquitto_passwd`
//! lets its users in (rumqttc 3.1.1 and 5.0, `mosquitto_pub`) and keeps wrong
//! passwords out with Mosquitto's codes; `allow_anonymous`; and a reload that
//! adds a user without dropping a connected client. (`pigeon passwd` files are
//! tested in pigeon/tests/binary_passwd.rs, where the binary is at hand.)

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use pigeon::Config;
use pigeon_tests::{config, options, start_with, Mqtt, WAIT};
use rumqttc::{ConnectReturnCode, QoS};

/// A fresh folder for one test under cargo's tmp dir.
fn test_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("passwords-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// Runs an external tool; a missing one fails the test saying what to install.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): install Debian's mosquitto and mosquitto-clients packages")
    })
}

/// `mosquitto_passwd [extra] -b FILE USER PASSWORD` (creates the file if missing).
fn mosquitto_passwd(file: &Path, extra: &[&str], user: &str, password: &str) {
    let file = file.to_str().expect("utf-8 path");
    let mut args = extra.to_vec();
    args.extend(["-b", file, user, password]);
    let out = run("mosquitto_passwd", &args);
    assert!(
        out.status.success(),
        "mosquitto_passwd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn with_passwords(file: &Path) -> Config {
    Config {
        password_file: Some(file.to_owned()),
        ..config()
    }
}

/// The CONNACK code a rumqttc 3.1.1 client gets (`Ok` for success).
async fn connect_v4(
    addr: SocketAddr,
    id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<(), ConnectReturnCode> {
    let mut opts = options(addr, id);
    if let Some((user, password)) = credentials {
        opts.set_credentials(user, password);
    }
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(opts, 10);
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return Err(code),
                Err(e) => panic!("{id}: connection failed without a CONNACK: {e}"),
            }
        }
    });
    outcome.await.expect("CONNACK in time")
}

/// The CONNACK code a rumqttc 5.0 client gets (`Ok` for success).
async fn connect_v5(
    addr: SocketAddr,
    id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<(), rumqttc::v5::mqttbytes::v5::ConnectReturnCode> {
    use rumqttc::v5::{mqttbytes::v5::Packet, ConnectionError, Event};
    let mut opts = rumqttc::v5::MqttOptions::new(id, addr.ip().to_string(), addr.port());
    if let Some((user, password)) = credentials {
        opts.set_credentials(user, password);
    }
    let (_client, mut eventloop) = rumqttc::v5::AsyncClient::new(opts, 10);
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
                Err(e) => panic!("{id}: connection failed without a CONNACK: {e}"),
            }
        }
    });
    outcome.await.expect("CONNACK in time")
}

/// `mosquitto_pub` with credentials (MQTT `version`: "mqttv311" or "mqttv5"),
/// on a blocking thread so that the broker keeps running meanwhile.
async fn mosquitto_pub(addr: SocketAddr, version: &str, user: &str, password: &str) -> Output {
    let args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        &addr.port().to_string(),
        "-V",
        version,
        "-u",
        user,
        "-P",
        password,
        "-t",
        "t",
        "-m",
        "x",
    ]
    .map(str::to_owned)
    .to_vec();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("mosquitto_pub", &args)
    })
    .await
    .expect("mosquitto_pub ran")
}

#[tokio::test]
async fn a_file_made_by_mosquitto_passwd_is_accepted() {
    let dir = test_dir("mosquitto_made");
    let file = dir.join("passwd");
    mosquitto_passwd(&file, &["-c"], "alice", "secret");
    mosquitto_passwd(&file, &["-H", "sha512"], "carol", "p@ss w0rd");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("alice:$7$") && text.contains("carol:$6$"),
        "{text}"
    );
    let broker = start_with(with_passwords(&file)).await;
    let addr = broker.local_addr();

    // Right passwords, both formats, both protocol versions.
    assert_eq!(
        connect_v4(addr, "a1", Some(("alice", "secret"))).await,
        Ok(())
    );
    assert_eq!(
        connect_v4(addr, "c1", Some(("carol", "p@ss w0rd"))).await,
        Ok(())
    );
    assert_eq!(
        connect_v5(addr, "a2", Some(("alice", "secret"))).await,
        Ok(())
    );

    // Wrong password and unknown user: 5 for 3.1.1 (as Mosquitto), 0x86 for 5.0.
    for (user, password) in [
        ("alice", "Secret"),
        ("carol", "p@ss"),
        ("mallory", "secret"),
    ] {
        assert_eq!(
            connect_v4(addr, "x1", Some((user, password))).await,
            Err(ConnectReturnCode::NotAuthorized),
            "{user}/{password}"
        );
        assert_eq!(
            connect_v5(addr, "x2", Some((user, password))).await,
            Err(rumqttc::v5::mqttbytes::v5::ConnectReturnCode::BadUserNamePassword),
            "{user}/{password}"
        );
    }

    // Mosquitto's own client agrees.
    let out = mosquitto_pub(addr, "mqttv311", "alice", "secret").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mosquitto_pub(addr, "mqttv311", "alice", "wrong").await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not authorised"), "{stderr}");
    let out = mosquitto_pub(addr, "mqttv5", "carol", "wrong").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Bad User Name or Password"),
        "{stderr}"
    );
    broker.close().await;
}

#[tokio::test]
async fn anonymous_clients_follow_allow_anonymous() {
    let dir = test_dir("anonymous");
    let file = dir.join("passwd");
    mosquitto_passwd(&file, &["-c"], "alice", "secret");

    // A password file refuses anonymous clients by default: 5 / 0x87.
    let broker = start_with(with_passwords(&file)).await;
    let addr = broker.local_addr();
    assert_eq!(
        connect_v4(addr, "anon4", None).await,
        Err(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(
        connect_v5(addr, "anon5", None).await,
        Err(rumqttc::v5::mqttbytes::v5::ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(
        connect_v4(addr, "alice", Some(("alice", "secret"))).await,
        Ok(())
    );
    broker.close().await;

    // allow_anonymous = true lets them in, and still checks users.
    let broker = start_with(Config {
        allow_anonymous: Some(true),
        ..with_passwords(&file)
    })
    .await;
    let addr = broker.local_addr();
    assert_eq!(connect_v4(addr, "anon4", None).await, Ok(()));
    assert_eq!(connect_v5(addr, "anon5", None).await, Ok(()));
    assert_eq!(
        connect_v4(addr, "alice", Some(("alice", "nope"))).await,
        Err(ConnectReturnCode::NotAuthorized)
    );
    broker.close().await;

    // allow_anonymous = false without a password file: a username is required,
    // and any is accepted (the handlers would judge it).
    let broker = start_with(Config {
        allow_anonymous: Some(false),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    assert_eq!(
        connect_v4(addr, "anon4", None).await,
        Err(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(
        connect_v4(addr, "named", Some(("anyone", "x"))).await,
        Ok(())
    );
    broker.close().await;
}

#[tokio::test]
async fn reload_adds_a_user_and_keeps_connected_clients() {
    let dir = test_dir("reload");
    let file = dir.join("passwd");
    mosquitto_passwd(&file, &["-c"], "alice", "secret");
    let broker = start_with(with_passwords(&file)).await;
    let addr = broker.local_addr();
    let mut alice_opts = options(addr, "alice-1");
    alice_opts.set_credentials("alice", "secret");
    let mut alice = Mqtt::connect_with(alice_opts).await;
    alice.subscribe("news/#", QoS::AtLeastOnce).await;
    assert_eq!(
        connect_v4(addr, "bob-0", Some(("bob", "hunter2"))).await,
        Err(ConnectReturnCode::NotAuthorized),
        "bob is not in the file yet"
    );

    mosquitto_passwd(&file, &[], "bob", "hunter2");
    broker.reload().expect("the new file parses");
    let mut bob_opts = options(addr, "bob-1");
    bob_opts.set_credentials("bob", "hunter2");
    let bob = Mqtt::connect_with(bob_opts).await;
    bob.publish("news/today", QoS::AtLeastOnce, false, "reloaded")
        .await;
    let got = alice.recv().await;
    assert_eq!(
        (&*got.topic, &got.payload[..]),
        ("news/today", &b"reloaded"[..]),
        "alice stayed connected"
    );

    // A broken file is refused by reload, naming file and line; the old one stays.
    std::fs::write(
        &file,
        format!("{}bob:plaintext\n", std::fs::read_to_string(&file).unwrap()),
    )
    .unwrap();
    let err = broker.reload().expect_err("a malformed line");
    let message = err.to_string();
    assert!(
        message.contains(&format!("password file {}: line 3", file.display())),
        "{message}"
    );
    assert_eq!(
        connect_v4(addr, "bob-2", Some(("bob", "hunter2"))).await,
        Ok(())
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        broker.clients().contains(&"alice-1".to_string()),
        "{:?}",
        broker.clients()
    );
    broker.close().await;
}

#[tokio::test]
async fn reload_replaces_the_acl_for_connected_clients() {
    let dir = test_dir("reload_acl");
    let acl = dir.join("acl");
    std::fs::write(&acl, "topic readwrite open/#\n").unwrap();
    let broker = start_with(Config {
        acl_file: Some(acl.clone()),
        ..config()
    })
    .await;
    let mut client = Mqtt::connect(broker.local_addr(), "acl-1").await;
    assert_eq!(
        client.subscribe("later/#", QoS::AtLeastOnce).await,
        vec![rumqttc::SubscribeReasonCode::Failure],
        "not granted yet"
    );

    std::fs::write(&acl, "topic readwrite open/#\ntopic readwrite later/#\n").unwrap();
    broker.reload().expect("the new ACL parses");
    assert_eq!(
        client.subscribe("later/#", QoS::AtLeastOnce).await,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        "the same connection sees the new ACL"
    );

    // A broken ACL is refused, naming file and line; the last good one stays.
    std::fs::write(&acl, "topic sometimes later/#\n").unwrap();
    let message = broker.reload().expect_err("a malformed line").to_string();
    assert!(
        message.contains(&format!("acl file {}: line 1", acl.display())),
        "{message}"
    );
    assert_eq!(
        client.subscribe("later/x", QoS::AtLeastOnce).await,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    broker.close().await;
}
