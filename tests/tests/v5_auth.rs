//! MQTT 5.0 enhanced authentication end to end: a toy challenge-response
//! method ("NONCE") written as an `#[on_authenticate]` handler, driven by a
//! byte-level v5 client: the AUTH exchange before CONNACK, refusals
//! (0x87, 0x8C), re-authentication and the protocol errors around AUTH.

use bytes::Bytes;
use pigeon::prelude::*;
use pigeon_codec::{Auth, AuthProperties, Packet, ReasonCode};
use pigeon_tests::{raw5, Raw};

/// Challenge "nonce-<n>"; the client proves it knows the password by answering
/// "<nonce>:<password>". The step counter says where the exchange is.
#[injectable]
pub struct NonceAuth;

const METHOD: &str = "NONCE";

#[handlers]
impl NonceAuth {
    #[on_authenticate]
    async fn nonce(
        &self,
        client: Client,
        auth: AuthExchange,
        credential: Credential,
    ) -> Result<AuthStep, AuthError> {
        if auth.method.as_deref() != Some(METHOD) {
            return Ok(AuthStep::Pass);
        }
        let nonce = format!("nonce-{}", client.id());
        match auth.step {
            0 => Ok(AuthStep::continue_with(nonce)),
            _ => {
                let password = credential.password.unwrap_or_default();
                let mut expected = format!("{nonce}:").into_bytes();
                expected.extend_from_slice(&password);
                if auth.data.as_deref() == Some(&expected[..]) {
                    Ok(AuthStep::success_with("welcome"))
                } else {
                    Err(AuthError::new("wrong answer to the challenge"))
                }
            }
        }
    }
}

#[module(providers = [NonceAuth])]
struct AuthModule;

fn auth(code: ReasonCode, method: &str, data: &str) -> Packet {
    Packet::Auth(Box::new(Auth {
        reason_code: code,
        properties: AuthProperties {
            authentication_method: Some(method.into()),
            authentication_data: Some(Bytes::from(data.to_owned())),
            ..Default::default()
        },
    }))
}

/// Sends CONNECT with the NONCE method and returns the server's first AUTH.
async fn start_exchange(addr: std::net::SocketAddr, id: &str, password: &str) -> (Raw, Auth) {
    let mut connect = raw5::connect_packet(id);
    connect.password = Some(Bytes::from(password.to_owned()));
    connect.properties.authentication_method = Some(METHOD.into());
    let mut raw = Raw::tcp(addr).await;
    raw.protocol = pigeon_codec::Protocol::V5;
    raw.send(Packet::Connect(Box::new(connect))).await;
    match raw.recv().await {
        Some(Packet::Auth(a)) => (raw, *a),
        other => panic!("expected AUTH, got {other:?}"),
    }
}

async fn connected(addr: std::net::SocketAddr, id: &str) -> Raw {
    let (mut raw, challenge) = start_exchange(addr, id, "pw").await;
    let nonce =
        String::from_utf8(challenge.properties.authentication_data.unwrap().to_vec()).unwrap();
    raw.send(auth(
        ReasonCode::ContinueAuthentication,
        METHOD,
        &format!("{nonce}:pw"),
    ))
    .await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) if ack.reason_code == ReasonCode::Success => raw,
        other => panic!("expected CONNACK 0, got {other:?}"),
    }
}

#[tokio::test]
async fn challenge_response_connects_with_method_and_data_in_connack() {
    let app = pigeon::testing::start::<AuthModule>().await.unwrap();
    let (mut raw, challenge) = start_exchange(app.local_addr(), "alice", "pw").await;
    assert_eq!(challenge.reason_code, ReasonCode::ContinueAuthentication);
    assert_eq!(
        challenge.properties.authentication_method.as_deref(),
        Some(METHOD)
    );
    assert_eq!(
        challenge.properties.authentication_data.as_deref(),
        Some(&b"nonce-alice"[..])
    );
    raw.send(auth(
        ReasonCode::ContinueAuthentication,
        METHOD,
        "nonce-alice:pw",
    ))
    .await;
    let Some(Packet::ConnAck(ack)) = raw.recv().await else {
        panic!("CONNACK expected");
    };
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some(METHOD)
    );
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"welcome"[..])
    );
    // The session works.
    let ack = raw
        .subscribe5(1, &[("t", raw5::opts(pigeon_codec::QoS::AtMostOnce))], None)
        .await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::Success]);
}

#[tokio::test]
async fn a_wrong_answer_gets_connack_0x87_and_an_unknown_method_0x8c() {
    let app = pigeon::testing::start::<AuthModule>().await.unwrap();
    let addr = app.local_addr();
    let (mut raw, _) = start_exchange(addr, "mallory", "pw").await;
    raw.send(auth(
        ReasonCode::ContinueAuthentication,
        METHOD,
        "nonce-mallory:guess",
    ))
    .await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.first(), Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::NotAuthorized),
        "{seen:?}"
    );

    let mut connect = raw5::connect_packet("kerberos-fan");
    connect.properties.authentication_method = Some("GSSAPI".into());
    let (_, ack) = Raw::connect(addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::BadAuthenticationMethod);

    // A plain CONNECT still passes (no handler refuses it).
    raw5::connect(addr, "plain").await;
}

#[tokio::test]
async fn only_auth_may_follow_connect_during_the_exchange() {
    let app = pigeon::testing::start::<AuthModule>().await.unwrap();
    let (mut raw, _) = start_exchange(app.local_addr(), "eager", "pw").await;
    raw.send(Packet::PingReq).await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.first(), Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::ProtocolError),
        "{seen:?}"
    );
}

#[tokio::test]
async fn reauthentication_succeeds_then_a_failed_one_disconnects_0x87() {
    let app = pigeon::testing::start::<AuthModule>().await.unwrap();
    let mut raw = connected(app.local_addr(), "bob").await;

    raw.send(auth(ReasonCode::ReAuthenticate, METHOD, "")).await;
    let Some(Packet::Auth(challenge)) = raw.recv().await else {
        panic!("AUTH challenge expected");
    };
    assert_eq!(challenge.reason_code, ReasonCode::ContinueAuthentication);
    raw.send(auth(
        ReasonCode::ContinueAuthentication,
        METHOD,
        "nonce-bob:pw",
    ))
    .await;
    let Some(Packet::Auth(done)) = raw.recv().await else {
        panic!("AUTH success expected");
    };
    assert_eq!(done.reason_code, ReasonCode::Success);
    assert_eq!(
        done.properties.authentication_data.as_deref(),
        Some(&b"welcome"[..])
    );
    raw.send(Packet::PingReq).await;
    assert!(matches!(raw.recv().await, Some(Packet::PingResp)));

    raw.send(auth(ReasonCode::ReAuthenticate, METHOD, "")).await;
    assert!(matches!(raw.recv().await, Some(Packet::Auth(_))));
    raw.send(auth(
        ReasonCode::ContinueAuthentication,
        METHOD,
        "nonce-bob:nope",
    ))
    .await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code == ReasonCode::NotAuthorized),
        "{seen:?}"
    );
}

#[tokio::test]
async fn auth_with_another_method_or_without_enhanced_auth_is_a_protocol_error() {
    let app = pigeon::testing::start::<AuthModule>().await.unwrap();
    let addr = app.local_addr();
    let mut raw = connected(addr, "carol").await;
    raw.send(auth(ReasonCode::ReAuthenticate, "OTHER", ""))
        .await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ProtocolError),
        "{seen:?}"
    );

    let mut plain = raw5::connect(addr, "plain-auth").await;
    plain
        .send(auth(ReasonCode::ReAuthenticate, METHOD, ""))
        .await;
    let seen = plain.closed().await;
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ProtocolError),
        "{seen:?}"
    );
}
