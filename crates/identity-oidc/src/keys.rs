//! Signing keys of OIDC identity tokens: generation for each of OpenBao's
//! algorithms (aws-lc-rs), their public JWKs, compact JWS signing and
//! verification. Private keys are kept as PKCS#8 DER (base64) in the
//! mount's storage, which the barrier encrypts.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use strongroom_sdk::{Error, Result};

/// The algorithms OpenBao signs with, in its order (the discovery
/// document lists them so).
pub const ALGORITHMS: [&str; 7] = [
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// A private signing key as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SigningKey {
    /// The key id (`kid`), a UUID.
    pub kid: String,
    /// The algorithm.
    pub alg: String,
    /// PKCS#8 DER, standard base64.
    pub pkcs8: String,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("oidc key: {e}"))
}

fn ecdsa_signing(alg: &str) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match alg {
        "ES256" => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        "ES384" => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        "ES512" => Some(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
        _ => None,
    }
}

fn rsa_signing(alg: &str) -> Option<&'static signature::RsaSignatureEncoding> {
    match alg {
        "RS256" => Some(&signature::RSA_PKCS1_SHA256),
        "RS384" => Some(&signature::RSA_PKCS1_SHA384),
        "RS512" => Some(&signature::RSA_PKCS1_SHA512),
        _ => None,
    }
}

/// Generates a key for `alg` (RSA keys are 2048 bits, as OpenBao's).
pub fn generate(alg: &str) -> Result<SigningKey> {
    let der: Vec<u8> = if rsa_signing(alg).is_some() {
        let kp =
            signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(internal)?;
        kp.as_der().map_err(internal)?.as_ref().to_vec()
    } else if let Some(a) = ecdsa_signing(alg) {
        let kp = EcdsaKeyPair::generate(a).map_err(internal)?;
        kp.to_pkcs8v1().map_err(internal)?.as_ref().to_vec()
    } else if alg == "EdDSA" {
        let kp = Ed25519KeyPair::generate().map_err(internal)?;
        kp.to_pkcs8v1().map_err(internal)?.as_ref().to_vec()
    } else {
        return Err(Error::bad_request(format!(
            "unknown signing algorithm {alg:?}"
        )));
    };
    Ok(SigningKey {
        kid: uuid::Uuid::new_v4().to_string(),
        alg: alg.to_string(),
        pkcs8: STANDARD.encode(der),
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    fn der(&self) -> Result<Vec<u8>> {
        STANDARD.decode(&self.pkcs8).map_err(internal)
    }

    /// The public JWK (`use`, `kty`, `kid`, `alg` and the key's numbers).
    pub fn public_jwk(&self) -> Result<Value> {
        let der = self.der()?;
        let alg = self.alg.as_str();
        let mut jwk = if rsa_signing(alg).is_some() {
            let kp = signature::RsaKeyPair::from_pkcs8(&der).map_err(internal)?;
            let pk = kp.public_key();
            json!({
                "kty": "RSA",
                "n": b64(pk.modulus().big_endian_without_leading_zero()),
                "e": b64(pk.exponent().big_endian_without_leading_zero()),
            })
        } else if let Some(a) = ecdsa_signing(alg) {
            let kp = EcdsaKeyPair::from_pkcs8(a, &der).map_err(internal)?;
            // Uncompressed point: 0x04 || x || y.
            let point = kp.public_key().as_ref();
            let half = point.len().saturating_sub(1) / 2;
            let (x, y) = point.get(1..).unwrap_or_default().split_at(half);
            let crv = match alg {
                "ES256" => "P-256",
                "ES384" => "P-384",
                _ => "P-521",
            };
            json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)})
        } else {
            let kp = Ed25519KeyPair::from_pkcs8(&der).map_err(internal)?;
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())})
        };
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("use".into(), json!("sig"));
            obj.insert("kid".into(), json!(self.kid));
            obj.insert("alg".into(), json!(self.alg));
        }
        Ok(jwk)
    }

    /// Signs `claims` as a compact JWS with header `{"alg", "kid"}`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let header = json!({"alg": self.alg, "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let der = self.der()?;
        let alg = self.alg.as_str();
        let sig: Vec<u8> = if let Some(enc) = rsa_signing(alg) {
            let kp = signature::RsaKeyPair::from_pkcs8(&der).map_err(internal)?;
            let mut sig = vec![0; kp.public_modulus_len()];
            kp.sign(enc, &SystemRandom::new(), input.as_bytes(), &mut sig)
                .map_err(internal)?;
            sig
        } else if let Some(a) = ecdsa_signing(alg) {
            let kp = EcdsaKeyPair::from_pkcs8(a, &der).map_err(internal)?;
            kp.sign(&SystemRandom::new(), input.as_bytes())
                .map_err(internal)?
                .as_ref()
                .to_vec()
        } else {
            let kp = Ed25519KeyPair::from_pkcs8(&der).map_err(internal)?;
            kp.sign(input.as_bytes()).as_ref().to_vec()
        };
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

/// A compact JWS split and decoded.
#[derive(Debug)]
pub struct Parsed {
    /// The header's `alg`.
    pub alg: String,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// The claims.
    pub claims: serde_json::Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS; the message says what is wrong.
pub fn parse(token: &str) -> std::result::Result<Parsed, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err("compact JWS format must have three parts".into());
    };
    let decode = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .map_err(|e| e.to_string())
    };
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|e| e.to_string())?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|a| ALGORITHMS.contains(a))
        .ok_or("unexpected signature algorithm")?
        .to_string();
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let claims: serde_json::Map<String, Value> =
        serde_json::from_slice(&decode(c)?).map_err(|e| e.to_string())?;
    Ok(Parsed {
        alg,
        kid,
        claims,
        signing_input: format!("{h}.{c}"),
        signature: decode(s)?,
    })
}

fn jwk_bytes(jwk: &Value, field: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(jwk.get(field)?.as_str()?).ok()
}

/// Whether `parsed` carries a valid signature by the public `jwk`.
pub fn verify(parsed: &Parsed, jwk: &Value) -> bool {
    if jwk.get("alg").and_then(Value::as_str) != Some(parsed.alg.as_str()) {
        return false;
    }
    let msg = parsed.signing_input.as_bytes();
    let sig = parsed.signature.as_slice();
    match parsed.alg.as_str() {
        "RS256" | "RS384" | "RS512" => {
            let (Some(n), Some(e)) = (jwk_bytes(jwk, "n"), jwk_bytes(jwk, "e")) else {
                return false;
            };
            let params = match parsed.alg.as_str() {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(params, msg, sig)
                .is_ok()
        }
        "ES256" | "ES384" | "ES512" => {
            let (Some(x), Some(y)) = (jwk_bytes(jwk, "x"), jwk_bytes(jwk, "y")) else {
                return false;
            };
            let params = match parsed.alg.as_str() {
                "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
                "ES384" => &signature::ECDSA_P384_SHA384_FIXED,
                _ => &signature::ECDSA_P521_SHA512_FIXED,
            };
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            signature::UnparsedPublicKey::new(params, point)
                .verify(msg, sig)
                .is_ok()
        }
        _ => {
            let Some(x) = jwk_bytes(jwk, "x") else {
                return false;
            };
            signature::UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_its_own_tokens_only() {
        for alg in ALGORITHMS {
            let k = generate(alg).unwrap();
            let jwk = k.public_jwk().unwrap();
            assert_eq!(jwk["alg"], alg);
            assert_eq!(jwk["use"], "sig");
            let token = k.sign(&json!({"sub": "x"})).unwrap();
            let p = parse(&token).unwrap();
            assert_eq!(p.kid.as_deref(), Some(k.kid.as_str()));
            assert!(verify(&p, &jwk), "{alg}");
            let other = generate(alg).unwrap().public_jwk().unwrap();
            assert!(!verify(&p, &other), "{alg}");
        }
        assert_eq!(
            generate("HS256").unwrap_err().to_string(),
            "unknown signing algorithm \"HS256\""
        );
        assert_eq!(
            parse("abc").unwrap_err(),
            "compact JWS format must have three parts"
        );
    }
}
