//! The TLS handshake of `mqtts://` and `wss://` listeners.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use super::{accept::HandshakeError, Endpoint};
use crate::hooks::Peer;

/// Completes the TLS handshake; the peer gains the verified client
/// certificate's identity, if the client sent one.
pub(super) async fn accept<S>(
    endpoint: &Endpoint,
    stream: S,
    peer: Peer,
) -> Result<(TlsStream<S>, Peer), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(acceptor) = &endpoint.tls else {
        // Bound listeners of a TLS kind always have an acceptor.
        return Err(HandshakeError::Tls(std::io::Error::other(
            "listener has no TLS configuration",
        )));
    };
    let stream = acceptor.accept(stream).await.map_err(HandshakeError::Tls)?;
    let (_, session) = stream.get_ref();
    let identity = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| crate::tls::identity(leaf));
    let unnamed = !identity.as_ref().is_some_and(|c| c.common_name.is_some());
    if endpoint.identity_as_username && unnamed {
        // Mosquitto refuses these too: the user name would be missing.
        return Err(HandshakeError::Tls(std::io::Error::other(
            "use_identity_as_username: the client certificate has no common name",
        )));
    }
    let peer = match identity {
        Some(certificate) => peer
            .with_certificate(certificate)
            .with_identity_as_username(endpoint.identity_as_username),
        None => peer,
    };
    Ok((stream, peer))
}
