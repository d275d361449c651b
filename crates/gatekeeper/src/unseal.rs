//! Unsealing: how Gatekeeper gets its own Vault token (a token, a wrapped
//! token, an AppRole login at the configured mount, an AWS EC2 instance
//! identity login, or a GitHub personal token at the configured mount), and
//! how long to wait between renewals of it.

use std::time::Duration;

use serde_json::json;

use crate::vault::{AuthToken, Token, VaultClient, VaultError};

/// A way to obtain Gatekeeper's token.
#[derive(Debug, Clone)]
pub enum UnsealMethod {
    /// A Vault token, checked with `lookup-self`.
    Token(Token),
    /// A wrapping token whose wrapped answer is a login.
    TokenWrapped(Token),
    /// An AppRole login at the configured AppRole mount.
    AppRole {
        /// The role id.
        role_id: Token,
        /// The secret id, if the role binds one.
        secret_id: Option<Token>,
    },
    /// An AWS EC2 login: the instance's PKCS7-signed identity document
    /// from the metadata service. (The original called this "IAM".)
    AwsEc2 {
        /// The Vault role, or the one named after the instance's AMI.
        role: Option<String>,
        /// The nonce for repeated logins from one instance.
        nonce: Option<Token>,
    },
    /// A GitHub personal access token, logged in at the GitHub auth mount.
    GitHub(Token),
}

/// Where the unseal methods log in.
#[derive(Debug, Clone)]
pub struct UnsealConfig {
    /// The AppRole mount (`vault-approle-mount`).
    pub approle_mount: String,
    /// The AWS auth mount (`vault-aws-mount`).
    pub aws_mount: String,
    /// The GitHub auth mount (`vault-github-mount`).
    pub github_mount: String,
    /// The EC2 metadata service (`aws-metadata-addr`).
    pub aws_metadata_addr: String,
}

/// Why unsealing failed.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    /// The Vault-API server refused the credential or failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The metadata service could not give the identity document.
    #[error("EC2 metadata service: {0}")]
    Metadata(String),
}

impl UnsealMethod {
    /// The method's name in `/unseal` and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            UnsealMethod::Token(_) => "token",
            UnsealMethod::TokenWrapped(_) => "token-wrapped",
            UnsealMethod::AppRole { .. } => "approle",
            UnsealMethod::AwsEc2 { .. } => "aws",
            UnsealMethod::GitHub(_) => "github",
        }
    }

    /// Obtains the token.
    pub async fn login(
        &self,
        vault: &VaultClient,
        cfg: &UnsealConfig,
    ) -> Result<AuthToken, UnsealError> {
        match self {
            UnsealMethod::Token(t) => Ok(vault.lookup_self(t).await?),
            UnsealMethod::TokenWrapped(w) => {
                let unwrapped = vault.unwrap(w).await?;
                // Check the token is alive, and get its real remaining TTL.
                Ok(vault.lookup_self(&unwrapped.token).await?)
            }
            UnsealMethod::AppRole { role_id, secret_id } => Ok(vault
                .approle_login(&cfg.approle_mount, role_id, secret_id.as_ref())
                .await?),
            UnsealMethod::AwsEc2 { role, nonce } => {
                let pkcs7 = ec2_identity_pkcs7(&cfg.aws_metadata_addr).await?;
                let mut body = json!({ "pkcs7": pkcs7 });
                if let Some(r) = role.as_deref().filter(|r| !r.is_empty()) {
                    body["role"] = json!(r);
                }
                if let Some(n) = nonce {
                    body["nonce"] = json!(n.expose());
                }
                let path = format!("auth/{}/login", cfg.aws_mount.trim_matches('/'));
                Ok(vault.login(&path, &body).await?)
            }
            UnsealMethod::GitHub(personal) => {
                let path = format!("auth/{}/login", cfg.github_mount.trim_matches('/'));
                Ok(vault
                    .login(&path, &json!({ "token": personal.expose() }))
                    .await?)
            }
        }
    }
}

/// Fetches the PKCS7 instance identity signature, with IMDSv2 (a session
/// token) when the service offers it and IMDSv1 otherwise. Vault wants it
/// without newlines.
pub async fn ec2_identity_pkcs7(metadata_addr: &str) -> Result<String, UnsealError> {
    let base = metadata_addr.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| UnsealError::Metadata(e.to_string()))?;
    let session = match http
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.text().await.ok().map(Token::new),
        _ => None,
    };
    let mut req = http.get(format!("{base}/latest/dynamic/instance-identity/pkcs7"));
    if let Some(s) = &session {
        req = req.header("X-aws-ec2-metadata-token", s.expose());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| UnsealError::Metadata(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(UnsealError::Metadata(format!(
            "identity document: status {}",
            resp.status()
        )));
    }
    let text = resp
        .text()
        .await
        .map_err(|e| UnsealError::Metadata(e.without_url().to_string()))?;
    let pkcs7: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if pkcs7.is_empty() {
        return Err(UnsealError::Metadata("empty identity document".into()));
    }
    Ok(pkcs7)
}

/// When to renew a token that has `ttl` left: at two thirds of it, and
/// not more often than every second.
pub fn renew_after(ttl: Duration) -> Duration {
    (ttl * 2 / 3).max(Duration::from_secs(1))
}

/// The delay before renewal retry `attempt` (0-based) after a failure:
/// 1s doubling up to 60s.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.min(6)).min(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_schedule() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(2400)
        );
        assert_eq!(renew_after(Duration::from_secs(1)), Duration::from_secs(1));
        let delays: Vec<u64> = (0..9).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    /// An EC2 metadata emulator that insists on IMDSv2.
    async fn metadata_emulator() -> String {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{get, put};
        let app = axum::Router::new()
            .route("/latest/api/token", put(|| async { "imds-session" }))
            .route(
                "/latest/dynamic/instance-identity/pkcs7",
                get(|h: HeaderMap| async move {
                    match h.get("x-aws-ec2-metadata-token") {
                        Some(v) if v == "imds-session" => {
                            (StatusCode::OK, "MIIAbc\nDEF==\n".to_string())
                        }
                        _ => (StatusCode::UNAUTHORIZED, String::new()),
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn ec2_identity_document_via_imdsv2_without_newlines() {
        let addr = metadata_emulator().await;
        assert_eq!(ec2_identity_pkcs7(&addr).await.unwrap(), "MIIAbcDEF==");
        // Nothing listening: a metadata error, not a panic.
        assert!(matches!(
            ec2_identity_pkcs7("http://127.0.0.1:9").await,
            Err(UnsealError::Metadata(_))
        ));
    }

    #[test]
    fn method_names_are_the_apis() {
        assert_eq!(UnsealMethod::Token(Token::new("x")).name(), "token");
        assert_eq!(
            UnsealMethod::TokenWrapped(Token::new("x")).name(),
            "token-wrapped"
        );
        let aws = UnsealMethod::AwsEc2 {
            role: None,
            nonce: Some(Token::new("n0nce")),
        };
        assert_eq!(aws.name(), "aws");
        assert!(!format!("{aws:?}").contains("n0nce"));
        let gh = UnsealMethod::GitHub(Token::new("ghp_s3cret"));
        assert_eq!(gh.name(), "github");
        assert!(!format!("{gh:?}").contains("s3cret"));
    }
}
