//! Lingering close: when the broker ends a connection with DISCONNECT or a
//! refusing CONNACK, it half-closes and keeps reading (and discarding) what the
//! client still sends, so a client busy writing reads the reason code instead
//! of a connection reset.

use std::time::Duration;

use bytes::BytesMut;
use pigeon::codec::{Connect, Packet, Protocol, Publish, QoS, ReasonCode, Will};
use pigeon_tests::{config, start_with, Raw, WAIT};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::tcp::{OwnedReadHalf, OwnedWriteHalf},
    sync::watch,
};

/// PUBREL for packet ids 1 and 2 (MQTT 5.0, reason 0x00 omitted), 32 times.
fn pubrel_batch() -> Vec<u8> {
    [[0x62, 0x02, 0x00, 0x01], [0x62, 0x02, 0x00, 0x02]]
        .iter()
        .flatten()
        .copied()
        .cycle()
        .take(256)
        .collect()
}

/// Writes PUBRELs, a batch a millisecond (as a client flushing its queue
/// does), until 50 batches after `seen` turns true; then half-closes.
/// `Err` names the first write that failed.
async fn keep_writing(
    mut write: OwnedWriteHalf,
    mut seen: watch::Receiver<bool>,
) -> Result<(), String> {
    let batch = pubrel_batch();
    let mut after = 0;
    while after < 50 {
        if let Err(e) = write.write_all(&batch).await {
            return Err(format!(
                "write failed ({after} batches after the reason code): {e}"
            ));
        }
        if *seen.borrow_and_update() {
            after += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = write.shutdown().await;
    Ok(())
}

/// Reads packets until the first that is not a PUBREC (flagging `seen`),
/// then until the broker closes; the close must be clean, not a reset.
async fn read_last_word(
    mut read: OwnedReadHalf,
    protocol: Protocol,
    seen: watch::Sender<bool>,
) -> Result<Packet, String> {
    let mut buf = BytesMut::new();
    let last = loop {
        match pigeon_codec::decode(&mut buf, protocol, usize::MAX) {
            Ok(Some(Packet::PubRec(_))) => continue,
            Ok(Some(packet)) => break packet,
            Ok(None) => {}
            Err(e) => return Err(format!("undecodable: {e}")),
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => return Err("closed before the reason code".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read failed before the reason code: {e}")),
        }
    };
    let _ = seen.send(true);
    let mut rest = Vec::new();
    match read.read_to_end(&mut rest).await {
        Ok(_) => Ok(last),
        Err(e) => Err(format!("reset after the reason code: {e}")),
    }
}

/// Runs the writer and the reader side by side on `raw`; the packet read.
async fn busy_client(raw: Raw) -> Packet {
    let protocol = raw.protocol;
    let (read, write) = raw.stream.into_split();
    let (seen_tx, seen_rx) = watch::channel(false);
    let writer = tokio::spawn(keep_writing(write, seen_rx));
    let last = tokio::time::timeout(WAIT, read_last_word(read, protocol, seen_tx))
        .await
        .expect("the reason code and the close in time");
    let written = writer.await.expect("writer task");
    let last = last.unwrap_or_else(|e| panic!("{e}"));
    written.unwrap_or_else(|e| panic!("{e}"));
    last
}

fn qos2(packet_id: u16) -> Packet {
    let mut publish = Publish::new("linger/t", QoS::ExactlyOnce, "x");
    publish.packet_id = packet_id;
    Packet::Publish(publish)
}

#[tokio::test]
async fn lingering_close_a_busy_client_reads_disconnect_0x93() {
    let broker = start_with(pigeon::Config {
        receive_maximum: 2,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let (mut raw, _) = Raw::connect(addr, Connect::new(Protocol::V5, "busy")).await;
    // Two QoS 2 exchanges open (PUBREC, no PUBREL yet), then a third: too many.
    for id in 1..=2 {
        raw.send(qos2(id)).await;
        assert!(matches!(raw.recv().await, Some(Packet::PubRec(_))));
    }
    raw.send(qos2(3)).await;
    match busy_client(raw).await {
        Packet::Disconnect(d) => assert_eq!(d.reason_code, ReasonCode::ReceiveMaximumExceeded),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    broker.close().await;
}

#[tokio::test]
async fn lingering_close_a_busy_client_reads_its_refusing_connack() {
    let broker = start_with(pigeon::Config {
        maximum_qos: QoS::AtLeastOnce,
        ..config()
    })
    .await;
    let mut raw = Raw::tcp(broker.local_addr()).await;
    raw.protocol = Protocol::V5;
    let mut connect = Connect::new(Protocol::V5, "busy-will");
    connect.will = Some(Will {
        topic: "linger/will".into(),
        payload: "bye".into(),
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: Default::default(),
    });
    raw.send(Packet::Connect(Box::new(connect))).await;
    match busy_client(raw).await {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::QoSNotSupported),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    broker.close().await;
}
