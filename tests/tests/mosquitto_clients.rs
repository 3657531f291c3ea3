//! Mosquitto's own command-line clients against Pigeon: 3.1.1, 3.1 and 5.0,
//! QoS 0/1/2 and retained.

use std::{
    net::SocketAddr,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use pigeon_tests::start;

fn spawn_sub(addr: SocketAddr, args: &[&str]) -> std::process::Child {
    Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-W",
            "10",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed (apt install mosquitto-clients)")
}

fn run_pub(addr: SocketAddr, args: &[&str]) -> Output {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .expect("mosquitto_pub is installed (apt install mosquitto-clients)");
    assert!(out.status.success(), "mosquitto_pub {args:?}: {out:?}");
    out
}

async fn wait_for_subscriptions(broker: &pigeon::BrokerHandle, n: usize) {
    let t0 = Instant::now();
    while broker.subscriptions().len() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "mosquitto_sub did not subscribe"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_and_sub_talk_through_pigeon() {
    let broker = start().await;
    let addr = broker.local_addr();
    let sub = spawn_sub(
        addr,
        &["-t", "mq/#", "-q", "2", "-v", "-C", "4", "-V", "mqttv311"],
    );
    wait_for_subscriptions(&broker, 1).await;

    run_pub(addr, &["-t", "mq/zero", "-m", "q0", "-q", "0"]);
    run_pub(
        addr,
        &["-t", "mq/one", "-m", "q1", "-q", "1", "-V", "mqttv31"],
    );
    run_pub(
        addr,
        &["-t", "mq/two", "-m", "q2", "-q", "2", "-V", "mqttv5"],
    );
    run_pub(addr, &["-t", "mq/kept", "-m", "retained", "-q", "1", "-r"]);

    let out = tokio::task::spawn_blocking(move || sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // Four publishers: MQTT orders messages per publisher only, and
    // mosquitto_sub prints a QoS 2 message once PUBREL arrives, so the QoS 1
    // message published after it may be printed first.
    let mut lines = text.lines().collect::<Vec<_>>();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec!["mq/kept retained", "mq/one q1", "mq/two q2", "mq/zero q0"]
    );

    // A late MQTT 5.0 subscriber gets the retained message.
    let late = spawn_sub(
        addr,
        &["-t", "mq/kept", "-C", "1", "-V", "mqttv5", "-F", "%r %p"],
    );
    let out = tokio::task::spawn_blocking(move || late.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "1 retained");
    broker.close().await;
}
