//! End-to-end tests: the broker driven over real sockets by third-party clients.
//!
//! Helpers: [`start`] runs an in-process broker on an ephemeral port;
//! [`Mqtt`] is a connected `rumqttc` v3.1.1 client whose incoming packets
//! arrive on channels; [`Raw`] speaks MQTT byte by byte through pigeon-codec,
//! for the cases a well-behaved client library will not produce.

pub mod pki;
pub mod raw5;
/// A real `redis-server` per test (the cluster tests).
pub mod redis;

use std::{
    net::SocketAddr,
    process::{Command, Output, Stdio},
    time::Duration,
};

use bytes::BytesMut;
use pigeon::{hooks::Hooks, BrokerHandle, Config};
use pigeon_codec::{ConnAck, Connect, Packet, Protocol};
use rumqttc::{AsyncClient, Event, MqttOptions, QoS};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// A config on 127.0.0.1, ephemeral port.
pub fn config() -> Config {
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        ..Config::default()
    }
}

/// Starts a broker with default options and no hooks.
pub async fn start() -> BrokerHandle {
    start_with(config()).await
}

/// Starts a broker with `config` and no hooks.
pub async fn start_with(config: Config) -> BrokerHandle {
    pigeon::Broker::start(config, Hooks::none())
        .await
        .expect("broker starts")
}

/// Waits until `n` clients are parked (`park_idle_after`; panics after
/// [`WAIT`]).
pub async fn parked(broker: &BrokerHandle, n: u64) {
    let waited = tokio::time::timeout(WAIT, async {
        while broker.stats().clients_parked != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let now = broker.stats().clients_parked;
    assert!(waited.is_ok(), "{now} clients parked, not {n}");
}

/// A connected rumqttc v4 client.
pub struct Mqtt {
    /// The rumqttc handle (publish, subscribe, ...).
    pub client: AsyncClient,
    /// The CONNACK the broker answered.
    pub connack: rumqttc::ConnAck,
    publishes: mpsc::UnboundedReceiver<rumqttc::Publish>,
    others: mpsc::UnboundedReceiver<rumqttc::Packet>,
    task: tokio::task::JoinHandle<()>,
}

/// Options for client `id` to the broker at `addr` (keep alive 30 s).
pub fn options(addr: SocketAddr, id: &str) -> MqttOptions {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts
}

impl Mqtt {
    /// Connects with clean session.
    pub async fn connect(addr: SocketAddr, id: &str) -> Mqtt {
        Self::connect_with(options(addr, id)).await
    }

    /// Connects with the given options; panics if the CONNACK is not success.
    pub async fn connect_with(opts: MqttOptions) -> Mqtt {
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let connack = tokio::time::timeout(WAIT, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(rumqttc::Packet::ConnAck(ack))) => return ack,
                    Ok(_) => {}
                    Err(e) => panic!("connect failed: {e}"),
                }
            }
        })
        .await
        .expect("CONNACK in time");
        let (ptx, publishes) = mpsc::unbounded_channel();
        let (otx, others) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = ptx.send(p);
                    }
                    Ok(Event::Incoming(other)) => {
                        let _ = otx.send(other);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        Mqtt {
            client,
            connack,
            publishes,
            others,
            task,
        }
    }

    /// Subscribes and waits for the SUBACK; returns its return codes.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("subscribe queued");
        self.suback().await
    }

    /// The next SUBACK's codes.
    pub async fn suback(&mut self) -> Vec<rumqttc::SubscribeReasonCode> {
        loop {
            match self.next_other().await {
                rumqttc::Packet::SubAck(ack) => return ack.return_codes,
                _ => continue,
            }
        }
    }

    /// The next incoming packet other than PUBLISH.
    pub async fn next_other(&mut self) -> rumqttc::Packet {
        tokio::time::timeout(WAIT, self.others.recv())
            .await
            .expect("packet in time")
            .expect("connection open")
    }

    /// Publishes and returns once it is queued to the client's event loop.
    pub async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, qos, retain, payload.into())
            .await
            .expect("publish queued");
    }

    /// The next PUBLISH received (panics after [`WAIT`]).
    pub async fn recv(&mut self) -> rumqttc::Publish {
        tokio::time::timeout(WAIT, self.publishes.recv())
            .await
            .expect("a message in time")
            .expect("connection open")
    }

    /// The next PUBLISH received within `wait`, if any.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<rumqttc::Publish> {
        tokio::time::timeout(wait, self.publishes.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next non-PUBLISH packet received within `wait`, if any.
    pub async fn other_within(&mut self, wait: Duration) -> Option<rumqttc::Packet> {
        tokio::time::timeout(wait, self.others.recv())
            .await
            .ok()
            .flatten()
    }

    /// Asserts that no PUBLISH arrives within `ms` milliseconds.
    pub async fn assert_silent(&mut self, ms: u64) {
        if let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(ms), self.publishes.recv()).await
        {
            panic!("unexpected message on {}: {:?}", p.topic, p.payload);
        }
    }

    /// Sends DISCONNECT and stops the event loop.
    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }

    /// Drops the connection without DISCONNECT (as a crashed client would).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// A byte-level MQTT client on pigeon-codec.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
    /// The version packets are encoded and decoded in.
    pub protocol: Protocol,
}

impl Raw {
    /// Opens a TCP connection (nothing sent yet).
    pub async fn tcp(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("tcp connect"),
            buf: BytesMut::new(),
            protocol: Protocol::V3_1_1,
        }
    }

    /// Connects with `connect` and returns the CONNACK.
    pub async fn connect(addr: SocketAddr, connect: Connect) -> (Raw, ConnAck) {
        let mut raw = Raw::tcp(addr).await;
        raw.protocol = connect.protocol;
        raw.send(Packet::Connect(Box::new(connect))).await;
        match raw.recv().await {
            Some(Packet::ConnAck(ack)) => (raw, *ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// A 3.1.1 CONNECT for `id`.
    pub fn connect_packet(id: &str, clean: bool) -> Connect {
        let mut c = Connect::new(Protocol::V3_1_1, id);
        c.clean_start = clean;
        c
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        pigeon_codec::encode(&packet, self.protocol, &mut out).expect("encodes");
        self.stream.write_all(&out).await.expect("write");
    }

    /// Sends raw bytes (errors ignored: the broker may have closed already).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next packet; `None` when the broker closed the connection.
    /// Panics if nothing happens within [`WAIT`].
    pub async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, self.recv_forever())
            .await
            .expect("a packet or close in time")
    }

    /// As [`Raw::recv`], waiting up to `wait` (e.g. a CONNACK held while a
    /// cluster node waits for another to let a session go).
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        tokio::time::timeout(wait, self.recv_forever())
            .await
            .expect("a packet or close in time")
    }

    async fn recv_forever(&mut self) -> Option<Packet> {
        loop {
            match pigeon_codec::decode(&mut self.buf, self.protocol, usize::MAX) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("broker sent undecodable bytes: {e}"),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Waits until the broker closes the connection, skipping packets; returns them.
    pub async fn closed(&mut self) -> Vec<Packet> {
        let mut seen = Vec::new();
        while let Some(p) = self.recv().await {
            seen.push(p);
        }
        seen
    }
}

/// Asserts the broker still serves: a fresh client gets its own message back.
pub async fn assert_serving(addr: SocketAddr) {
    let id = format!("probe-{}", std::process::id());
    let mut probe = Mqtt::connect(addr, &id).await;
    probe.subscribe("probe/echo", QoS::AtLeastOnce).await;
    probe
        .publish("probe/echo", QoS::AtLeastOnce, false, "ping")
        .await;
    let msg = probe.recv().await;
    assert_eq!(&msg.payload[..], b"ping");
    probe.disconnect().await;
}

/// Runs an external client (`mosquitto_pub`, `python3`, ...) to its end
/// without blocking the broker's runtime, killing it after `limit`. A missing
/// program fails the test, naming what to install.
pub async fn run_tool(program: &str, args: &[&str], install: &str, limit: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): install {install}"));
    let t0 = std::time::Instant::now();
    while child.try_wait().expect("wait for the tool").is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.wait_with_output().expect("tool output")
}

/// The Python to run the paho-mqtt scripts with: `$PIGEON_PYTHON` (set by
/// `scripts/test`), else the workspace's `.venv` left by an earlier
/// `scripts/test`, else `python3`, so that a plain `cargo test --workspace`
/// works for those who have paho-mqtt installed system-wide.
pub fn python() -> String {
    if let Some(p) = std::env::var_os("PIGEON_PYTHON") {
        return p.to_string_lossy().into_owned();
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    if std::path::Path::new(venv).exists() {
        return venv.to_owned();
    }
    "python3".to_owned()
}

/// Runs `tests/python/transport_paho.py ARGS` in the project's Python (see
/// [`python`]) and fails the test, with the script's output, unless it succeeds.
pub async fn run_transport_paho(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/transport_paho.py");
    let argv: Vec<&str> = std::iter::once(script)
        .chain(args.iter().copied())
        .collect();
    let out = run_tool(&python(), &argv, PAHO, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "transport_paho.py {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mosquitto's command-line clients package, for messages.
pub const MOSQUITTO_CLIENTS: &str = "Debian's mosquitto-clients (apt install mosquitto-clients)";
/// Python's paho-mqtt 2.x, for messages.
pub const PAHO: &str = "python3 with paho-mqtt 2.x (pip install 'paho-mqtt>=2,<3')";
/// Node.js with the npm packages of `tests/js` (MQTT.js, playwright-core), for messages.
pub const NODE: &str =
    "Node.js (Debian's nodejs and npm) and `npm ci` in tests/js — scripts/test does both";
/// Debian's Chromium at `/usr/bin/chromium`, for messages.
pub const CHROMIUM: &str = "Debian's chromium at /usr/bin/chromium (scripts/test installs it)";

/// The folder of the Node scripts and their `package.json`.
pub fn js_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Fails the test, naming `scripts/test`, unless `node` runs and the npm
/// package `package` is installed in `tests/js/node_modules`.
pub fn require_node_package(package: &str) {
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => {}
        other => panic!("cannot run node ({other:?}): install {NODE}"),
    }
    let manifest = js_dir()
        .join("node_modules")
        .join(package)
        .join("package.json");
    assert!(
        manifest.is_file(),
        "npm package {package} is missing ({} not found): install {NODE}",
        manifest.display()
    );
}

/// Reads `stream` until the broker closes it (within [`WAIT`]); returns what
/// it sent and how long that took.
pub async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = std::time::Instant::now();
    let mut sent = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut sent))
        .await
        .expect("closed in time");
    (sent, started.elapsed())
}
