//! MQTT bytes over WebSocket messages: reads take the payloads of binary
//! frames in order, each write goes out as one binary frame.

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::{
    tungstenite::{Error as WsError, Message},
    WebSocketStream,
};

/// A WebSocket as a byte stream. A text frame is an error (MQTT travels in
/// binary frames only), which closes the connection; a close frame is the end
/// of the stream. Pings are answered by tungstenite. Either side of a
/// connection can use it (the broker's listeners, and `pigeon-bench`'s clients).
///
/// ```no_run
/// # async fn run(tcp: tokio::net::TcpStream) {
/// use tokio_tungstenite::{tungstenite::protocol::Role, WebSocketStream};
/// let ws = WebSocketStream::from_raw_socket(tcp, Role::Client, None).await;
/// let stream = pigeon::transport::WsIo::new(ws); // AsyncRead + AsyncWrite
/// # let _ = stream;
/// # }
/// ```
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    /// The rest of the last binary frame.
    pending: Bytes,
}

impl<S> WsIo<S> {
    /// Wraps an upgraded WebSocket.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
        }
    }
}

fn to_io(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            let message = match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                Some(Ok(message)) => message,
            };
            match message {
                Message::Binary(data) => this.pending = data,
                Message::Text(_) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text frame on an MQTT WebSocket (MQTT needs binary frames)",
                    )))
                }
                // Control frames: tungstenite already queued the Pong.
                _ => {}
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(to_io)?;
        let frame = Message::Binary(Bytes::copy_from_slice(buf));
        Pin::new(&mut this.ws).start_send(frame).map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(to_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_close(cx)
            .map_err(to_io)
    }
}
