//! OpenPGP key pairs for the tests of PGP-encrypted shares and root tokens:
//! a fresh v4 key (Ed25519 primary, Curve25519 encryption subkey, the
//! shape GnuPG makes by default), its public key as the API takes it
//! (base64 of the binary key), its fingerprint as OpenBao reports it, and
//! decryption of what a server encrypted to it.

use base64::Engine as _;
use pgp::composed::{
    EncryptionCaps, KeyType, Message, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
    SubkeyParamsBuilder,
};
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::ser::Serialize as _;
use pgp::types::{KeyDetails, Password};

/// A test key pair.
pub struct TestKey {
    secret: SignedSecretKey,
    /// The public key as `pgp_keys`/`pgp_key` take it: base64 of the
    /// binary (non-armored) key.
    pub public_b64: String,
    /// Lower-case hex of the v4 fingerprint.
    pub fingerprint: String,
}

impl TestKey {
    /// A fresh key pair with user id `name <name@example.com>`.
    pub fn generate(name: &str) -> TestKey {
        let mut sub = SubkeyParamsBuilder::default();
        sub.key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
            .can_encrypt(EncryptionCaps::All);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id(format!("{name} <{name}@example.com>"))
            .subkeys(vec![sub.build().expect("subkey params")]);
        let secret = params
            .build()
            .expect("key params")
            .generate(rand08::thread_rng())
            .expect("key generation");
        let public = SignedPublicKey::from(secret.clone());
        let public_b64 = base64::engine::general_purpose::STANDARD
            .encode(public.to_bytes().expect("serialise public key"));
        let fingerprint = hex_of(secret.primary_key.fingerprint().as_bytes());
        TestKey {
            secret,
            public_b64,
            fingerprint,
        }
    }

    /// Decrypts a binary OpenPGP message encrypted to this key.
    pub fn decrypt(&self, message: &[u8]) -> Vec<u8> {
        let msg = Message::from_bytes(message).expect("an OpenPGP message");
        let mut plain = msg
            .decrypt(&Password::empty(), &self.secret)
            .expect("decrypts with the test key");
        plain.as_data_vec().expect("literal data")
    }

    /// Decrypts the base64 of a message to text (a root token, or a
    /// share's hex).
    pub fn decrypt_b64(&self, encoded: &str) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64 ciphertext");
        String::from_utf8(self.decrypt(&bytes)).expect("text plaintext")
    }

    /// Decrypts the hex of a message to text.
    pub fn decrypt_hex(&self, encoded: &str) -> String {
        let bytes: Vec<u8> = (0..encoded.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&encoded[i..i + 2], 16).expect("hex ciphertext"))
            .collect();
        String::from_utf8(self.decrypt(&bytes)).expect("text plaintext")
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` fresh keys named `operator0`, `operator1`, ...
pub fn keys(n: usize) -> Vec<TestKey> {
    (0..n)
        .map(|i| TestKey::generate(&format!("operator{i}")))
        .collect()
}
