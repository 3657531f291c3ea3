//! WebSocket listeners (`ws://`, `wss://`): the HTTP/1.1 upgrade, checked by
//! hand so that every refusal is a clear HTTP answer (a plain GET gets 426,
//! a wrong path 404, a missing `mqtt` subprotocol 400), then MQTT over binary
//! frames through [`WsIo`].

mod io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::{
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
    WebSocketStream,
};

pub use io::WsIo;

use super::{accept::HandshakeError, Endpoint};

/// The longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Reads the upgrade request, answers it, and returns the MQTT byte stream.
pub(super) async fn accept<S>(endpoint: &Endpoint, mut stream: S) -> Result<WsIo<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(refuse(&mut stream, Refusal::new(431, "request head too large")).await);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => {
                return Err(HandshakeError::WebSocket(
                    "closed before the request".into(),
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(HandshakeError::WebSocket(e.to_string())),
        }
    };
    let accept_key = match check(endpoint, &buf[..head_len]) {
        Ok(key) => key,
        Err(refusal) => return Err(refuse(&mut stream, refusal).await),
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept_key}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
        endpoint.ws_subprotocol
    );
    let written = async {
        stream.write_all(response.as_bytes()).await?;
        stream.flush().await
    };
    written
        .await
        .map_err(|e| HandshakeError::WebSocket(e.to_string()))?;
    // Bytes the client sent after its request already belong to the WebSocket.
    let rest = buf.split_off(head_len);
    // Bounded by the MQTT packet limit, not tungstenite's 64 MiB default.
    let config = WebSocketConfig::default()
        .max_message_size(Some(endpoint.ws_max_message))
        .max_frame_size(Some(endpoint.ws_max_message));
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(config)).await;
    Ok(WsIo::new(ws))
}

/// An HTTP error answer.
struct Refusal {
    status: u16,
    reason: &'static str,
    extra: &'static str,
    body: String,
}

impl Refusal {
    fn new(status: u16, body: impl Into<String>) -> Self {
        let reason = match status {
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            426 => "Upgrade Required",
            _ => "Request Header Fields Too Large",
        };
        Self {
            status,
            reason,
            extra: "",
            body: body.into(),
        }
    }

    fn with_header(mut self, header: &'static str) -> Self {
        self.extra = header;
        self
    }
}

/// Checks the upgrade request; `Ok` carries the `Sec-WebSocket-Accept` value.
fn check(endpoint: &Endpoint, head: &[u8]) -> Result<String, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return Err(Refusal::new(400, "malformed HTTP request"));
    }
    if request.method != Some("GET") {
        return Err(Refusal::new(
            405,
            "MQTT over WebSocket starts with a GET upgrade",
        ));
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err(
            Refusal::new(426, "this port speaks MQTT over WebSocket only")
                .with_header("Upgrade: websocket\r\nConnection: Upgrade\r\n"),
        );
    }
    let path = request.path.unwrap_or("/");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path != endpoint.ws_path {
        return Err(Refusal::new(
            404,
            format!("no MQTT endpoint at {path}; try {}", endpoint.ws_path),
        ));
    }
    if header("sec-websocket-version") != Some("13") {
        return Err(Refusal::new(426, "WebSocket version 13 is required")
            .with_header("Sec-WebSocket-Version: 13\r\n"));
    }
    let Some(key) = header("sec-websocket-key") else {
        return Err(Refusal::new(400, "missing Sec-WebSocket-Key"));
    };
    let offered = header("sec-websocket-protocol")
        .is_some_and(|v| v.split(',').any(|p| p.trim() == endpoint.ws_subprotocol));
    if !offered {
        return Err(Refusal::new(
            400,
            format!(
                "the WebSocket subprotocol {:?} is required",
                endpoint.ws_subprotocol
            ),
        ));
    }
    Ok(derive_accept_key(key.trim().as_bytes()))
}

/// Writes the refusal and closes; returns the error to log.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, refusal: Refusal) -> HandshakeError {
    let body = format!("{}\n", refusal.body);
    let response = format!(
        "HTTP/1.1 {} {}\r\n{}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        refusal.status,
        refusal.reason,
        refusal.extra,
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    HandshakeError::WebSocket(format!(
        "{} {}: {}",
        refusal.status, refusal.reason, refusal.body
    ))
}
