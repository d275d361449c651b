//! The type of a token, as roles store it and requests and answers name
//! it: OpenBao's `service`, `batch`, `default` (the mount's choice), and a
//! token role's `default-service` / `default-batch` (the request's choice,
//! else service / batch). Serialised as those strings.

use serde::{Deserialize, Serialize};

/// A token type, or a role's default for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenType {
    /// No choice: the mount's (or the request's) type decides.
    #[default]
    Default,
    /// A service token.
    Service,
    /// A batch token.
    Batch,
    /// The request's type, else a service token (token roles, mounts).
    DefaultService,
    /// The request's type, else a batch token (token roles, mounts).
    DefaultBatch,
}

impl TokenType {
    /// The name OpenBao uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Default => "default",
            TokenType::Service => "service",
            TokenType::Batch => "batch",
            TokenType::DefaultService => "default-service",
            TokenType::DefaultBatch => "default-batch",
        }
    }

    /// Parses one of the five names (`None` for anything else).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(TokenType::Default),
            "service" => Some(TokenType::Service),
            "batch" => Some(TokenType::Batch),
            "default-service" => Some(TokenType::DefaultService),
            "default-batch" => Some(TokenType::DefaultBatch),
            _ => None,
        }
    }

    /// Whether this is a batch token.
    pub fn is_batch(self) -> bool {
        self == TokenType::Batch
    }
}

impl std::fmt::Display for TokenType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<TokenType> for serde_json::Value {
    fn from(t: TokenType) -> Self {
        serde_json::Value::from(t.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_openbaos_names() {
        for t in [
            TokenType::Default,
            TokenType::Service,
            TokenType::Batch,
            TokenType::DefaultService,
            TokenType::DefaultBatch,
        ] {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<TokenType>(&json).unwrap(), t);
            assert_eq!(TokenType::parse(t.as_str()), Some(t));
        }
        assert_eq!(TokenType::parse("bogus"), None);
        assert_eq!(TokenType::parse(""), None);
    }
}
