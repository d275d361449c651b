//! The connection string and TLS to PostgreSQL: libpq's `sslmode` values
//! mapped onto rustls.
//!
//! tokio-postgres understands `sslmode=disable|prefer|require` only, and
//! refuses libpq's `verify-ca`, `verify-full` and `sslrootcert`. This module
//! takes those out of the connection string before tokio-postgres parses it,
//! and builds the rustls client configuration they ask for, as libpq does:
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default) | if the server offers it | no |
//! | `require` | always | no; with a CA file (`tls_ca_file`/`sslrootcert`): chain, as `verify-ca` |
//! | `verify-ca` | always | chain to the CA file (or the public web roots) |
//! | `verify-full` | always | chain and host name |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;

/// libpq's `sslmode` (see the module docs for what each one checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS always; the certificate is checked only when a CA file is given.
    Require,
    /// TLS always, with a certificate chaining to the trusted roots.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries plain text first; TLS-if-offered is the
            // closest (and safer) behaviour tokio-postgres has.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "unknown sslmode {other:?} in connection_url (expected disable, prefer, require, verify-ca or verify-full)"
                ))
            }
        })
    }
}

/// A connection string with the TLS settings taken out.
#[derive(Debug)]
pub(crate) struct Connection {
    /// What tokio-postgres parses (without `sslmode`/`sslrootcert`).
    pub config: tokio_postgres::Config,
    /// The requested mode (default `prefer`, as libpq's).
    pub ssl_mode: SslMode,
    /// The CA file: `tls_ca_file` or else the URL's `sslrootcert`.
    pub ca_file: Option<PathBuf>,
}

/// Parses `url` (a `postgres://` URL or libpq `key=value` words), taking out
/// `sslmode` and `sslrootcert`. Errors never repeat the URL (it may hold a
/// password).
pub(crate) fn parse_connection(
    url: &str,
    tls_ca_file: Option<&Path>,
) -> Result<Connection, String> {
    let mut ssl_mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> bool {
        match key {
            "sslmode" => {
                ssl_mode = Some(value.to_string());
                true
            }
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(value));
                true
            }
            _ => false,
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        !take(k, &percent_decode(v))
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        url.split_whitespace()
            .filter(|word| {
                let (k, v) = word.split_once('=').unwrap_or((word, ""));
                !take(k.trim(), v.trim_matches('\''))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ssl_mode = SslMode::parse(ssl_mode.as_deref().unwrap_or("prefer"))?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| format!("invalid connection_url: {e}"))?;
    config.ssl_mode(match ssl_mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    Ok(Connection {
        config,
        ssl_mode,
        ca_file: tls_ca_file.map(Path::to_path_buf).or(root_cert),
    })
}

/// Decodes `%XX` escapes (file paths in `sslrootcert` may carry them).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(Ok(b)) = value.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls client configuration `conn` asks for.
pub(crate) fn client_config(conn: &Connection) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let roots = || -> Result<Arc<RootCertStore>, String> {
        let mut store = RootCertStore::empty();
        match &conn.ca_file {
            Some(path) => {
                let shown = path.display();
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read tls_ca_file {shown}: {e}"))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("cannot read tls_ca_file {shown}: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("tls_ca_file {shown} holds no PEM certificate"));
                }
                for cert in certs {
                    store
                        .add(cert)
                        .map_err(|e| format!("bad certificate in tls_ca_file {shown}: {e}"))?;
                }
            }
            None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(Arc::new(store))
    };
    let verifier = |check_name: bool| -> Result<Arc<dyn ServerCertVerifier>, String> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots()?, Arc::clone(&provider))
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
        Ok(Arc::new(Verifier {
            inner,
            check_name,
            check_chain: true,
            provider: Arc::clone(&provider),
        }))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match conn.ssl_mode {
        SslMode::VerifyFull => verifier(true)?,
        SslMode::VerifyCa => verifier(false)?,
        SslMode::Require if conn.ca_file.is_some() => verifier(false)?,
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            // libpq's behaviour for these modes: encrypted, not
            // authenticated. Signatures are still checked.
            let inner = WebPkiServerVerifier::builder_with_provider(
                Arc::new(RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                }),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
            Arc::new(Verifier {
                inner,
                check_name: false,
                check_chain: false,
                provider: Arc::clone(&provider),
            })
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Checks the server certificate as far as the `sslmode` asks.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
    check_chain: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
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
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn takes_libpq_tls_words_out_of_urls_and_keyword_strings() {
        let c = parse_connection(
            "postgres://u:p@db.example:5433/vault?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
            None,
        )
        .unwrap();
        assert_eq!(c.ssl_mode, SslMode::VerifyFull);
        assert_eq!(c.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(c.config.get_dbname(), Some("vault"));
        assert_eq!(c.config.get_application_name(), Some("x"));

        let c = parse_connection(
            "host=127.0.0.1 port=5 user=u sslmode=verify-ca dbname=d",
            Some(Path::new("/ca.pem")),
        )
        .unwrap();
        assert_eq!(c.ssl_mode, SslMode::VerifyCa);
        assert_eq!(c.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(c.config.get_ports(), &[5]);

        let c = parse_connection("postgres://u@h/d", None).unwrap();
        assert_eq!(c.ssl_mode, SslMode::Prefer);
        assert_eq!(c.config.get_ssl_mode(), PgSslMode::Prefer);
        let c = parse_connection("postgres://u@h/d?sslmode=disable", None).unwrap();
        assert_eq!(c.config.get_ssl_mode(), PgSslMode::Disable);
    }

    #[test]
    fn refuses_unknown_modes_without_echoing_the_password() {
        let err = parse_connection("postgres://u:hunter2@h/d?sslmode=maybe", None).unwrap_err();
        assert!(err.contains("unknown sslmode \"maybe\""), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let c = parse_connection(
            "postgres://u@h/d?sslmode=verify-full",
            Some(Path::new("/nonexistent/ca.pem")),
        )
        .unwrap();
        let err = client_config(&c).unwrap_err();
        assert!(
            err.contains("cannot read tls_ca_file /nonexistent/ca.pem"),
            "{err}"
        );
    }
}
