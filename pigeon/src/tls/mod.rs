//! TLS material: PEM certificate chains and keys read into a rustls server
//! configuration, and the identity of a verified client certificate.
//!
//! rustls runs on its `ring` provider, chosen explicitly (not the process
//! default), so that Pigeon builds without cmake and behaves the same when
//! another crate of the application enables `aws-lc-rs`. TLS 1.2 and 1.3.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    crypto::CryptoProvider,
    server::{ServerConfig, WebPkiClientVerifier},
    RootCertStore,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

use crate::hooks::PeerCertificate;

/// Why a listener's TLS files cannot be used. Each names the file and the
/// option (`cert`, `key`, `ca_file`) it came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read or is not PEM.
    #[error("cannot read {}: {message}", .path.display())]
    Read {
        /// The option naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is PEM but holds nothing of the expected kind.
    #[error("{} holds no {what}", .path.display())]
    Empty {
        /// The option naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for ("PEM certificate", "PEM private key").
        what: &'static str,
    },
    /// rustls refused the combination (e.g. a key that does not match the certificate).
    #[error("{} with {}: {message}", .cert.display(), .key_file.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key_file: PathBuf,
        /// rustls' reason.
        message: String,
    },
}

impl TlsError {
    /// The option (TOML key) the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Read { key, .. } | Self::Empty { key, .. } => key,
            Self::Config { .. } => "key",
        }
    }
}

/// The TLS settings of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates are verified against.
    pub ca_file: Option<PathBuf>,
    /// Refuse clients without a valid certificate (needs `ca_file`).
    pub require_certificate: bool,
}

/// The `ring` provider, named explicitly so no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the files into a rustls server configuration.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates("cert", &files.cert)?;
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_error("key", &files.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| config_error(files, e))?;
    let builder = match &files.ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("ca_file", ca_file)? {
                roots.add(ca).map_err(|e| TlsError::Read {
                    key: "ca_file",
                    path: ca_file.clone(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider());
            let verifier = if files.require_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier.build().map_err(|e| TlsError::Read {
                key: "ca_file",
                path: ca_file.clone(),
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| config_error(files, e))?;
    Ok(Arc::new(config))
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(key, path, e))?;
    if chain.is_empty() {
        return Err(TlsError::Empty {
            key,
            path: path.to_owned(),
            what: "PEM certificate",
        });
    }
    Ok(chain)
}

fn pem_error(key: &'static str, path: &Path, error: rustls_pki_types::pem::Error) -> TlsError {
    use rustls_pki_types::pem::Error;
    match error {
        Error::NoItemsFound => TlsError::Empty {
            key,
            path: path.to_owned(),
            what: if key == "key" {
                "PEM private key"
            } else {
                "PEM certificate"
            },
        },
        Error::Io(e) => TlsError::Read {
            key,
            path: path.to_owned(),
            message: e.to_string(),
        },
        other => TlsError::Read {
            key,
            path: path.to_owned(),
            message: format!("not PEM: {other}"),
        },
    }
}

fn config_error(files: &TlsFiles, error: rustls::Error) -> TlsError {
    TlsError::Config {
        cert: files.cert.clone(),
        key_file: files.key.clone(),
        message: error.to_string(),
    }
}

/// The subject and common name of a (verified) DER certificate; `None` if it
/// does not parse, which a certificate rustls verified always does.
pub(crate) fn identity(der: &[u8]) -> Option<PeerCertificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Some(PeerCertificate {
        subject: subject.to_string(),
        common_name,
        der: der.to_vec(),
    })
}
