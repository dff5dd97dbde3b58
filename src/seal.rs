//! Sealing the secrets Kith must keep readable in PostgreSQL (a clinician's
//! second-factor key): XChaCha20-Poly1305 under a key that lives outside the
//! database (`KITH_DATA_KEY`), each sealed value bound to what it belongs to,
//! so a value copied to another row does not open.

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

const NONCE: usize = 24;

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// A sealer keyed by the SHA-256 of the configured key (32+ random characters).
    pub fn new(key: &secrecy::SecretString) -> Self {
        let key = Sha256::digest(key.expose_secret().as_bytes());
        Self {
            cipher: XChaCha20Poly1305::new(&key),
        }
    }

    /// `plain` sealed for `context` (for example `second-factor:<user id>`):
    /// a random nonce, then the ciphertext and its tag.
    pub fn seal(&self, plain: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain,
            aad: context.as_bytes(),
        };
        // Encryption fails only for messages of gigabytes.
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    /// The plain value, when `sealed` was sealed under this key for `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Option<Vec<u8>> {
        if sealed.len() <= NONCE {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE);
        let payload = Payload {
            msg: body,
            aad: context.as_bytes(),
        };
        self.cipher.decrypt(XNonce::from_slice(nonce), payload).ok()
    }
}

/// Sealers for one kind of secret, named by key id: the current key seals,
/// every listed key opens what it sealed, so a key can be rotated without
/// re-sealing everything at once. A key's id is derived from the key itself
/// (8 bytes of SHA-256, hex), so a wrong key is an unknown id, never a
/// silent failure to open.
#[derive(Clone)]
pub struct Keyring {
    current: (String, Sealer),
    older: Vec<(String, Sealer)>,
}

impl Keyring {
    pub fn new(current: &secrecy::SecretString, older: &[secrecy::SecretString]) -> Self {
        let entry = |key: &secrecy::SecretString| (key_id(key), Sealer::new(key));
        Self {
            current: entry(current),
            older: older.iter().map(entry).collect(),
        }
    }

    /// `plain` sealed under the current key, with that key's id.
    pub fn seal(&self, plain: &[u8], context: &str) -> (String, Vec<u8>) {
        (self.current.0.clone(), self.current.1.seal(plain, context))
    }

    /// The plain value, when `key_id` is a key of this ring and it opens.
    pub fn open(&self, key_id: &str, sealed: &[u8], context: &str) -> Option<Vec<u8>> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|(id, _)| id == key_id)
            .and_then(|(_, sealer)| sealer.open(sealed, context))
    }

    /// The ids of every key of the ring, the current one first.
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

fn key_id(key: &secrecy::SecretString) -> String {
    let digest = Sha256::digest([b"kith key id\0", key.expose_secret().as_bytes()].concat());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_ring_still_opens_what_the_old_key_sealed() {
        let old =
            secrecy::SecretString::from("the old key, thirty-two characters or more".to_string());
        let new =
            secrecy::SecretString::from("the new key, thirty-two characters or more".to_string());
        let before = Keyring::new(&old, &[]);
        let (old_id, sealed) = before.seal(b"Jordan", "contact:1");
        let after = Keyring::new(&new, std::slice::from_ref(&old));
        assert_eq!(
            after.open(&old_id, &sealed, "contact:1").as_deref(),
            Some(&b"Jordan"[..])
        );
        let (new_id, _) = after.seal(b"x", "contact:2");
        assert_ne!(new_id, old_id, "each key has its own id");
        assert_eq!(after.ids(), vec![new_id, old_id.clone()]);
        assert_eq!(
            Keyring::new(&new, &[]).open(&old_id, &sealed, "contact:1"),
            None
        );
    }

    fn sealer(key: &str) -> Sealer {
        Sealer::new(&secrecy::SecretString::from(key.to_string()))
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_context() {
        let a = sealer("a key of at least thirty-two characters");
        let sealed = a.seal(b"JBSWY3DPEHPK3PXP", "second-factor:1");
        assert_eq!(
            a.open(&sealed, "second-factor:1").as_deref(),
            Some(&b"JBSWY3DPEHPK3PXP"[..])
        );
        assert_eq!(a.open(&sealed, "second-factor:2"), None);
        assert_eq!(
            sealer("another key of thirty-two characters!").open(&sealed, "second-factor:1"),
            None
        );
        let mut tampered = sealed.clone();
        tampered[30] ^= 1;
        assert_eq!(a.open(&tampered, "second-factor:1"), None);
        assert_ne!(
            a.seal(b"same", "c"),
            a.seal(b"same", "c"),
            "a fresh nonce each time"
        );
        assert_eq!(a.open(b"short", "c"), None);
    }
}
