//! TLS with rustls: what each `sslmode` verifies, the connector, and why a handshake failed.
//!
//! The verifier wraps rustls' WebPKI verifier: `verify-full` takes its verdict as it is,
//! `verify-ca` (and `require` with a root certificate file) forgives only a certificate that
//! does not name the host, and `prefer`/`require` without roots accept any certificate (the
//! handshake's signatures are still checked, so the server holds the key it presents). The
//! first refusal is recorded for the error message.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{ConnectError, ConnectOptions, RootCert, SslMode};

/// What the TLS handshake verifies.
#[derive(Debug)]
pub(super) enum Verify {
    Nothing,
    Chain(RootCert),
    Full(RootCert),
}

/// Why the verifier refused the server's certificate, filled in during the handshake.
pub(super) type Failure = Arc<Mutex<Option<String>>>;

impl ConnectOptions {
    /// What the TLS handshake checks, per `sslmode` and the root certificate file.
    pub(super) fn verification(&self) -> Result<Verify, ConnectError> {
        let tls_err = |message: String| ConnectError::Tls {
            target: self.target(),
            message,
        };
        match self.sslmode {
            SslMode::Disable | SslMode::Allow | SslMode::Prefer => Ok(Verify::Nothing),
            // libpq: `require` verifies the chain when the root certificate file exists.
            SslMode::Require => Ok(match &self.sslrootcert {
                Some(root @ RootCert::File { path, .. }) if path.is_file() => {
                    Verify::Chain(root.clone())
                }
                _ => Verify::Nothing,
            }),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let root = match &self.sslrootcert {
                    Some(RootCert::System) => RootCert::System,
                    Some(root @ RootCert::File { path, .. }) if path.is_file() => root.clone(),
                    Some(RootCert::File { path, .. }) => {
                        return Err(tls_err(format!(
                            "root certificate file {} does not exist; sslmode={} needs it (give one with sslrootcert, use sslrootcert=system, or use sslmode=require, which does not verify the server)",
                            path.display(),
                            self.sslmode
                        )))
                    }
                    None => {
                        return Err(tls_err(format!(
                            "no home directory to find ~/.postgresql/root.crt, and sslmode={} needs a root certificate (give one with sslrootcert)",
                            self.sslmode
                        )))
                    }
                };
                Ok(if self.sslmode == SslMode::VerifyFull {
                    Verify::Full(root)
                } else {
                    Verify::Chain(root)
                })
            }
        }
    }

    /// A connector for `verify`; `failure` receives the reason the certificate was refused.
    pub(super) fn tls_connector(
        &self,
        verify: &Verify,
        failure: &Failure,
    ) -> Result<MakeRustlsConnect, ConnectError> {
        let setup = |message: String| ConnectError::Tls {
            target: self.target(),
            message,
        };
        let provider = Arc::new(ring_provider());
        let (root, check_host) = match verify {
            Verify::Nothing => (None, false),
            Verify::Chain(root) => (Some(root), false),
            Verify::Full(root) => (Some(root), true),
        };
        let webpki = match root {
            None => None,
            Some(root) => {
                let roots = root_store(root).map_err(setup)?;
                let v = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| setup(format!("cannot set up certificate verification: {e}")))?;
                Some(v)
            }
        };
        let verifier = Verifier {
            webpki,
            check_host,
            failure: Arc::clone(failure),
            provider: Arc::clone(&provider),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    /// The message for a failed handshake: the verifier's reason when it refused the
    /// certificate, else what went wrong.
    pub(super) fn tls_failure(&self, tls: Option<(&Verify, &Failure)>, reason: &str) -> String {
        let Some((verify, failure)) = tls else {
            return format!("TLS handshake failed: {reason}");
        };
        let refused = failure.lock().ok().and_then(|s| s.clone());
        let Some(problem) = refused else {
            return format!("TLS handshake failed: {reason}");
        };
        let roots = match verify {
            Verify::Chain(RootCert::File { path, .. })
            | Verify::Full(RootCert::File { path, .. }) => {
                format!("root certificates from {}", path.display())
            }
            _ => "the system's root certificates".to_string(),
        };
        format!(
            "the server's certificate failed verification (sslmode={}, {roots}): {problem}",
            self.sslmode
        )
    }
}

/// rustls' `ring` provider. rustls marks it deprecated because it has no post-quantum key
/// exchange; its other provider, aws-lc-rs, would add a large C library to the build, and a
/// PostgreSQL connection does not need the post-quantum group.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The trusted roots: a PEM file, or the platform's.
fn root_store(root: &RootCert) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File { path, .. } => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| {
                    format!("cannot load root certificate file {}: {e}", path.display())
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "root certificate file {} holds no PEM certificate",
                    path.display()
                ));
            }
            for cert in certs {
                store.add(cert).map_err(|e| {
                    format!(
                        "cannot use a certificate of root certificate file {}: {e}",
                        path.display()
                    )
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no system root certificates found for sslrootcert=system{why}"
                ));
            }
        }
    }
    Ok(store)
}

/// A short reason for a TLS error.
pub(super) fn reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => certificate_problem(c, None),
        rustls::Error::AlertReceived(alert) => format!("the server sent the alert {alert:?}"),
        other => other.to_string(),
    }
}

/// Why a certificate was refused, in words; `host` is the name it was checked against.
fn certificate_problem(e: &CertificateError, host: Option<&str>) -> String {
    match e {
        CertificateError::UnknownIssuer => {
            "the certificate is not signed by a trusted root certificate".to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            match host {
                Some(h) => format!("the certificate does not name host `{h}`"),
                None => "the certificate does not name the host".to_string(),
            }
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the certificate has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the certificate is not valid yet".to_string()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not meant for a server".to_string()
        }
        other => format!("{other:?}"),
    }
}

/// See the module documentation.
#[derive(Debug)]
struct Verifier {
    /// `None`: accept any certificate.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// `false`: a certificate valid for another name is accepted (`verify-ca`).
    check_host: bool,
    failure: Failure,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Ok(v) => Ok(v),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_host => Ok(ServerCertVerified::assertion()),
            Err(e) => {
                let problem = match &e {
                    rustls::Error::InvalidCertificate(c) => {
                        certificate_problem(c, Some(&server_name.to_str()))
                    }
                    other => other.to_string(),
                };
                if let Ok(mut slot) = self.failure.lock() {
                    slot.get_or_insert(problem);
                }
                Err(e)
            }
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
