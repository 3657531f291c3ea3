//! A minimal MQTT client over pigeon-codec: just enough to drive a broker hard
//! without the measuring side becoming the bottleneck. Every connection goes
//! over the same [`Dialer`]: plain TCP, TLS, WebSocket or secure WebSocket;
//! the MQTT side never learns which.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use pigeon_codec::{Connect, MqttCodec, Packet, Protocol, QoS, Subscribe, SubscribeFilter};
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
use tokio_util::codec::Framed;

use crate::ws::WsIo;

/// The byte stream under an MQTT connection.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connected client's framed stream.
pub(crate) type Conn = Framed<Box<dyn Io>, MqttCodec>;

/// The transport every client connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// Plain TCP (`mqtt://`).
    Tcp,
    /// TLS over TCP (`mqtts://`).
    Tls,
    /// MQTT in binary WebSocket messages (`ws://`).
    Ws,
    /// WebSocket over TLS (`wss://`).
    Wss,
}

impl Transport {
    /// Its name, as on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    fn secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }
}

/// How to verify the broker's certificate.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// Certificates chaining to the CA(s) in this PEM file.
    Ca(PathBuf),
    /// Anything: no verification at all (measuring only, never for real use).
    Insecure,
}

/// What the TLS transports need.
#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

/// Opens connections to the broker over one transport.
#[derive(Clone)]
pub(crate) struct Dialer {
    addr: SocketAddr,
    transport: Transport,
    tls: Option<Tls>,
    /// The URL of the upgrade request (WebSocket transports).
    ws_url: String,
}

impl Dialer {
    /// A dialer for `addr`. The TLS transports need `trust` and check the
    /// certificate against `server_name` (a DNS name or an IP address).
    pub(crate) fn new(
        addr: SocketAddr,
        transport: Transport,
        trust: Option<Trust>,
        server_name: &str,
        ws_path: &str,
    ) -> anyhow::Result<Self> {
        let tls = if transport.secure() {
            let trust = trust.with_context(|| {
                format!(
                    "--transport {} needs --ca FILE (or --insecure)",
                    transport.name()
                )
            })?;
            let server_name = ServerName::try_from(server_name.to_owned())
                .with_context(|| format!("--server-name: not a DNS name or IP: {server_name}"))?;
            Some(Tls {
                connector: TlsConnector::from(Arc::new(client_config(&trust)?)),
                server_name,
            })
        } else {
            None
        };
        let scheme = if transport.secure() { "wss" } else { "ws" };
        let path = if ws_path.starts_with('/') {
            ws_path.to_owned()
        } else {
            format!("/{ws_path}")
        };
        Ok(Dialer {
            addr,
            transport,
            tls,
            ws_url: format!("{scheme}://{addr}{path}"),
        })
    }

    /// A new byte stream to the broker, its handshakes done.
    async fn open(&self) -> anyhow::Result<Box<dyn Io>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let ws = matches!(self.transport, Transport::Ws | Transport::Wss);
        let Some(tls) = &self.tls else {
            return Ok(if ws {
                Box::new(self.upgrade(tcp).await?)
            } else {
                Box::new(tcp)
            });
        };
        let stream = tls
            .connector
            .connect(tls.server_name.clone(), tcp)
            .await
            .with_context(|| format!("TLS handshake with {}", self.addr))?;
        Ok(if ws {
            Box::new(self.upgrade(stream).await?)
        } else {
            Box::new(stream)
        })
    }

    /// The WebSocket upgrade with the `mqtt` subprotocol.
    async fn upgrade<S>(&self, stream: S) -> anyhow::Result<WsIo<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut request = self.ws_url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        let (ws, _response) = tokio_tungstenite::client_async(request, stream)
            .await
            .with_context(|| format!("WebSocket upgrade at {}", self.ws_url))?;
        Ok(WsIo::new(ws))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(trust: &Trust) -> anyhow::Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    Ok(match trust {
        Trust::Ca(path) => builder
            .with_root_certificates(roots(path)?)
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth(),
    })
}

fn roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(path).with_context(|| format!("--ca {}", path.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("--ca {}", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("--ca {}: unusable certificate", path.display()))?;
    }
    if roots.is_empty() {
        bail!("--ca {}: no certificate in the file", path.display());
    }
    Ok(roots)
}

/// `--insecure`: accepts any certificate; handshake signatures are still
/// checked, so the TLS work measured is the real one.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Seconds of MQTT 5 session expiry a [`Session::Persistent`] client asks for.
pub(crate) const SESSION_EXPIRY: u32 = 3600;

/// The session a client connects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Session {
    /// Clean session (3.1.1) / clean start with no expiry (5): the broker
    /// forgets it at disconnect and keeps nothing for it.
    Clean,
    /// clean_session=false (3.1.1) / clean start false with a session expiry
    /// of [`SESSION_EXPIRY`] (5): the broker keeps the session and stores its
    /// QoS 1/2 messages, online and offline.
    Persistent,
}

/// Connects with a clean session and waits for a successful CONNACK.
pub(crate) async fn connect(
    dialer: &Dialer,
    client_id: &str,
    protocol: Protocol,
) -> anyhow::Result<Conn> {
    Ok(connect_session(dialer, client_id, protocol, Session::Clean)
        .await?
        .0)
}

/// Connects with `session` and waits for a successful CONNACK; also returns
/// whether the broker resumed a stored session.
pub(crate) async fn connect_session(
    dialer: &Dialer,
    client_id: &str,
    protocol: Protocol,
    session: Session,
) -> anyhow::Result<(Conn, bool)> {
    let stream = dialer.open().await?;
    let mut conn = Framed::new(stream, MqttCodec::new(16 * 1024 * 1024));
    let mut connect = Connect::new(protocol, client_id);
    connect.keep_alive = 0;
    if session == Session::Persistent {
        connect.clean_start = false;
        if protocol == Protocol::V5 {
            connect.properties.session_expiry_interval = Some(SESSION_EXPIRY);
        }
    }
    conn.send(Packet::Connect(Box::new(connect))).await?;
    match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
        Ok(Some(Ok(Packet::ConnAck(ack)))) if !ack.reason_code.is_error() => {
            Ok((conn, ack.session_present))
        }
        Ok(Some(Ok(Packet::ConnAck(ack)))) => bail!("{client_id}: refused: {:?}", ack.reason_code),
        Ok(other) => bail!("{client_id}: expected CONNACK, got {other:?}"),
        Err(_) => bail!("{client_id}: no CONNACK within 10 s"),
    }
}

/// Subscribes to `filter` and waits for the SUBACK.
pub(crate) async fn subscribe(conn: &mut Conn, filter: &str, qos: QoS) -> anyhow::Result<()> {
    let sub = Subscribe::new(1, vec![SubscribeFilter::new(filter, qos)]);
    conn.send(Packet::Subscribe(sub)).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
            Ok(Some(Ok(Packet::SubAck(ack)))) => {
                if ack.reason_codes.iter().any(|c| c.is_error()) {
                    bail!("subscription to {filter} refused: {:?}", ack.reason_codes);
                }
                return Ok(());
            }
            Ok(Some(Ok(_))) => continue,
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }
}
