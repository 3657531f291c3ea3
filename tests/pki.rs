//! Test certificates, generated at run time with rcgen (no key is committed):
//! a CA, a server certificate for `localhost` / `127.0.0.1` and a client
//! certificate (CN `device-7`, O `Acme`), all signed by the CA, written as
//! PEM files into a fresh folder for the broker and the external clients.

use std::{path::PathBuf, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

/// The common name of the client certificate.
pub const CLIENT_CN: &str = "device-7";

/// PEM files of a throwaway PKI.
pub struct Pki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate chain and key.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// A client certificate signed by another CA (refused by the broker).
    pub stranger_cert: PathBuf,
    /// Its key.
    pub stranger_key: PathBuf,
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("CA certificate").pem();
    (Issuer::new(params, key), pem)
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Acme");
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// Generates everything into a folder named after `test`.
    pub fn generate(test: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("pigeon-pki-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("pki folder");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write pem");
            path
        };
        let (issuer, ca_pem) = ca("Pigeon Test CA");
        let (server_cert, server_key) = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            leaf(&issuer, &[], CLIENT_CN, ExtendedKeyUsagePurpose::ClientAuth);
        let (other, _) = ca("Someone Else's CA");
        let (stranger_cert, stranger_key) =
            leaf(&other, &[], "stranger", ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            stranger_cert: write("stranger.pem", &stranger_cert),
            stranger_key: write("stranger.key", &stranger_key),
        }
    }

    /// A rustls client configuration (ring) trusting the CA, presenting the
    /// client certificate when `client_cert` is set.
    pub fn client_config(&self, client_cert: bool) -> Arc<ClientConfig> {
        self.client_config_with(client_cert.then_some((&self.client_cert, &self.client_key)))
    }

    /// As [`Pki::client_config`] with the stranger's certificate.
    pub fn stranger_config(&self) -> Arc<ClientConfig> {
        self.client_config_with(Some((&self.stranger_cert, &self.stranger_key)))
    }

    fn client_config_with(&self, identity: Option<(&PathBuf, &PathBuf)>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&self.ca).expect("ca file") {
            roots.add(ca.expect("ca pem")).expect("ca cert");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .expect("cert file")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert pem");
                let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
        };
        Arc::new(config)
    }
}
