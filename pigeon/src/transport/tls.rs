//! The TLS handshake of `mqtts://` and `wss://` listeners.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{server::TlsStream, TlsAcceptor};

use super::{accept::HandshakeError, Endpoint};
use crate::{
    hooks::Peer,
    tls::{TlsError, TlsFiles},
};

/// A TLS listener's files and the rustls configuration read from them. New
/// handshakes use whatever configuration is current; a reload swaps it and
/// leaves established sessions as they are.
pub(crate) struct TlsEndpoint {
    files: TlsFiles,
    config: ArcSwap<ServerConfig>,
}

impl TlsEndpoint {
    /// Reads the files (at startup: an error stops the broker, naming the file).
    pub(super) fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = crate::tls::server_config(&files)?;
        Ok(Self {
            files,
            config: ArcSwap::new(config),
        })
    }

    /// Reads the files again; the old configuration stays if they do not parse.
    fn reload(&self) -> Result<(), TlsError> {
        let config = crate::tls::server_config(&self.files)?;
        self.config.store(config);
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }
}

/// Re-reads every TLS listener's certificate, key and CA files; each listener
/// whose files fail keeps its configuration, and the error (naming the file)
/// is logged and returned.
pub(crate) fn reload_tls(endpoints: &[Arc<Endpoint>]) -> Vec<TlsError> {
    let mut errors = Vec::new();
    for endpoint in endpoints {
        let Some(tls) = &endpoint.tls else { continue };
        match tls.reload() {
            Ok(()) => tracing::info!(
                listener = %endpoint.name,
                cert = %tls.files.cert.display(),
                "TLS certificates reloaded"
            ),
            Err(error) => {
                tracing::error!(listener = %endpoint.name, "{error}; keeping the previous certificates");
                errors.push(error);
            }
        }
    }
    errors
}

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
    let Some(tls) = &endpoint.tls else {
        // Bound listeners of a TLS kind always have an acceptor.
        return Err(HandshakeError::Tls(std::io::Error::other(
            "listener has no TLS configuration",
        )));
    };
    let stream = tls
        .acceptor()
        .accept(stream)
        .await
        .map_err(HandshakeError::Tls)?;
    let (_, session) = stream.get_ref();
    let identity = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| crate::tls::identity(leaf));
    let unnamed = identity.as_ref().is_none_or(|c| c.common_name.is_none());
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
