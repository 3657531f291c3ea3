//! MQTT 5.0 enhanced authentication: the AUTH exchange before CONNACK and
//! re-authentication of an established connection, both driven by the
//! authenticate handler chain (see [`crate::hooks::AuthStep`]).

use std::{sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use pigeon_codec::{Auth, AuthProperties, ConnectProperties, Packet, ReasonCode};
use tokio::io::AsyncWriteExt;

use super::{handshake::refuse, Connection, Exit, Reader};
use crate::hooks::guard;
use crate::{
    engine::Engine,
    hooks::{AuthExchange, AuthStep, Client, Credential},
};

/// The enhanced authentication a connection was established with.
pub(super) struct Enhanced {
    /// Its Authentication Method; every AUTH must carry the same.
    pub method: String,
    /// The CONNECT's credential, given to the handlers again.
    pub credential: Credential,
    /// The step of a re-authentication in progress.
    pub step: Option<u32>,
}

fn auth_packet(code: ReasonCode, method: &str, data: Option<Bytes>) -> Packet {
    Packet::Auth(Box::new(Auth {
        reason_code: code,
        properties: AuthProperties {
            authentication_method: Some(method.to_owned()),
            authentication_data: data,
            ..Default::default()
        },
    }))
}

/// How one AUTH round trip before CONNACK ends.
enum Round {
    /// The client answered with this data: the next step.
    Next(Option<Bytes>),
    /// The client broke the exchange's rules: refuse the CONNECT.
    Refuse(ReasonCode, String),
    /// The client left, or did not answer in time.
    Ended,
}

/// Runs the exchange a CONNECT with an Authentication Method starts. Returns
/// the data for CONNACK, or `None` when the connection was refused (CONNACK
/// sent) or ended.
pub(super) async fn on_connect(
    engine: &Arc<Engine>,
    reader: &mut Reader,
    client: &Client,
    credential: &Credential,
    properties: &ConnectProperties,
) -> Option<Option<Bytes>> {
    let method = properties.authentication_method.clone()?;
    let mut exchange = AuthExchange {
        method: Some(method.clone()),
        data: properties.authentication_data.clone(),
        step: 0,
        reauthenticate: false,
    };
    let hooks = &engine.hooks;
    let (code, message) = loop {
        let step = guard(hooks.authenticate_step(client, credential, exchange.clone())).await;
        match step {
            Ok(Ok(AuthStep::Success(data))) => return Some(data),
            Ok(Ok(AuthStep::Continue(data))) => {
                match round_trip(engine, reader, client, &method, data).await {
                    Round::Next(data) => {
                        exchange.data = data;
                        exchange.step += 1;
                    }
                    Round::Refuse(code, message) => break (code, message),
                    Round::Ended => return None,
                }
            }
            Ok(Ok(AuthStep::Pass)) => {
                let message = format!("no handler for authentication method {method:?}");
                break (ReasonCode::BadAuthenticationMethod, message);
            }
            Ok(Err(error)) => break (error.reason, error.message),
            Err(panic) => break (ReasonCode::ServerUnavailable, panic),
        }
    };
    let limit = properties.maximum_packet_size;
    refuse(engine, reader.get_mut(), client, limit, code, &message).await;
    None
}

/// Sends AUTH 0x18 with the handler's data and reads the client's answer,
/// which must be AUTH 0x18 with the same method (or DISCONNECT).
async fn round_trip(
    engine: &Engine,
    reader: &mut Reader,
    client: &Client,
    method: &str,
    data: Bytes,
) -> Round {
    let mut out = BytesMut::new();
    let packet = auth_packet(ReasonCode::ContinueAuthentication, method, Some(data));
    if pigeon_codec::encode(&packet, client.protocol(), &mut out).is_err() {
        return Round::Refuse(ReasonCode::UnspecifiedError, "AUTH too large".to_owned());
    }
    let stream = reader.get_mut();
    let sent = tokio::time::timeout(Duration::from_secs(5), async {
        stream.write_all(&out).await?;
        stream.flush().await
    });
    if !matches!(sent.await, Ok(Ok(()))) {
        return Round::Ended;
    }
    let next = tokio::select! {
        _ = engine.shutdown.cancelled() => return Round::Ended,
        next = tokio::time::timeout(engine.config.connect_timeout, reader.next()) => next,
    };
    match next {
        Ok(Some(Ok(Packet::Auth(auth))))
            if auth.reason_code == ReasonCode::ContinueAuthentication
                && auth.properties.authentication_method.as_deref() == Some(method) =>
        {
            Round::Next(auth.properties.authentication_data)
        }
        Ok(Some(Ok(Packet::Disconnect(_)))) | Ok(None) | Err(_) => Round::Ended,
        Ok(Some(Err(e))) if e.is_io() => Round::Ended,
        // MQTT-3.1.2-30 (only AUTH or DISCONNECT before CONNACK), a method
        // change, or a bad reason code.
        Ok(Some(Ok(_))) => Round::Refuse(
            ReasonCode::ProtocolError,
            "unexpected packet during authentication".to_owned(),
        ),
        Ok(Some(Err(e))) => Round::Refuse(e.reason_code(), e.to_string()),
    }
}

/// DISCONNECT can carry only some reason codes; an authentication refusal
/// becomes 0x87 unless it is one of them.
fn disconnect_code(code: ReasonCode) -> ReasonCode {
    use ReasonCode::*;
    match code {
        UnspecifiedError
        | NotAuthorized
        | BadAuthenticationMethod
        | ServerBusy
        | ImplementationSpecificError
        | ProtocolError => code,
        _ => NotAuthorized,
    }
}

impl Connection {
    /// AUTH after CONNACK: re-authentication (0x19, then 0x18 steps) with the
    /// method the connection was established with. Anything else is a protocol
    /// error; a refusal ends the connection with DISCONNECT.
    pub(super) async fn on_auth(&mut self, auth: Auth) -> Result<(), Exit> {
        let violation = |m: &str| Err(Exit::Violation(ReasonCode::ProtocolError, m.into()));
        let Some(state) = self.rare.as_ref().and_then(|r| r.auth.as_ref()) else {
            return violation("AUTH without an authentication method");
        };
        if auth.properties.authentication_method.as_deref() != Some(&*state.method) {
            return violation("AUTH with another authentication method");
        }
        let step = match (auth.reason_code, state.step) {
            (ReasonCode::ReAuthenticate, None) => 0,
            (ReasonCode::ContinueAuthentication, Some(step)) => step + 1,
            _ => return violation("unexpected AUTH reason code"),
        };
        let method = state.method.clone();
        let exchange = AuthExchange {
            method: Some(method.clone()),
            data: auth.properties.authentication_data,
            step,
            reauthenticate: true,
        };
        let hooks = self.engine.hooks.clone();
        let decided =
            guard(hooks.authenticate_step(&self.client, &state.credential, exchange)).await;
        let (code, message) = match decided {
            Ok(Ok(AuthStep::Continue(data))) => {
                self.set_auth_step(Some(step));
                self.write(&auth_packet(
                    ReasonCode::ContinueAuthentication,
                    &method,
                    Some(data),
                ));
                return Ok(());
            }
            Ok(Ok(AuthStep::Success(data))) => {
                self.set_auth_step(None);
                self.write(&auth_packet(ReasonCode::Success, &method, data));
                return Ok(());
            }
            Ok(Ok(AuthStep::Pass)) => (
                ReasonCode::BadAuthenticationMethod,
                format!("no handler for authentication method {method:?}"),
            ),
            Ok(Err(error)) => (disconnect_code(error.reason), error.message),
            Err(panic) => (ReasonCode::UnspecifiedError, panic),
        };
        Err(Exit::Violation(
            code,
            format!("re-authentication failed: {message}"),
        ))
    }

    fn set_auth_step(&mut self, step: Option<u32>) {
        if let Some(state) = self.rare.as_mut().and_then(|r| r.auth.as_mut()) {
            state.step = step;
        }
    }
}
