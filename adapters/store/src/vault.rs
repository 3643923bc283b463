//! Encryption of personal identifiers at rest.
//!
//! DOMAIN.md §3: "Full identifiers never appear in logs". The store goes further: resident
//! IDs, card numbers, bank accounts and phone numbers never appear in the database either.
//! Each is stored as
//!
//! - a ciphertext, AES-256-GCM with a random 96-bit nonce (`nonce || ciphertext || tag`), to
//!   read it back, and where lookups need it
//! - a *blind index*: the first 16 bytes of HMAC-SHA256 under a separate key, so equality
//!   lookups (`WHERE person_idx IN (...)`) work without decrypting anything.
//!
//! Both keys are derived from one 32-byte master key: `HMAC-SHA256(master, "ykt/enc/v1")` and
//! `HMAC-SHA256(master, "ykt/idx/v1")`. The master key lives in a key file (or the
//! environment), never in the database; the database only holds a key-check value
//! ([`Vault::check_value`]) so a store opened with the wrong key is refused instead of
//! silently writing rows nobody can find again.

use crate::error::{Result, StoreError};
use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::Sha256;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

type HmacSha256 = Hmac<Sha256>;

/// Length of the random nonce prefixed to every ciphertext.
pub const NONCE_LEN: usize = 12;
/// Length of the GCM authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of a blind index.
pub const INDEX_LEN: usize = 16;

/// What a blind index is computed over. The kind is part of the HMAC input, so the same digits
/// as a resident ID and as an account give unrelated indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    ResidentId,
    Account,
    Phone,
}

impl IndexKind {
    fn tag(self) -> &'static [u8] {
        match self {
            IndexKind::ResidentId => b"resident_id",
            IndexKind::Account => b"account",
            IndexKind::Phone => b"phone",
        }
    }
}

/// A 16-byte blind index.
pub type BlindIndex = [u8; INDEX_LEN];

/// Holds the derived keys. Cheap to clone (shared). `Debug` prints no key material.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    cipher: Aes256Gcm,
    /// HMAC keyed with the index key, cloned for each use (saves re-keying).
    idx: HmacSha256,
    /// Key-check value, hex (see [`Vault::check_value`]).
    check: String,
    /// Where nonces come from: a ChaCha12 CSPRNG (`StdRng`) seeded from the operating system
    /// when the vault is made. A system call per nonce (`OsRng`) cost three `getrandom` calls
    /// per stored line; a CSPRNG seeded from the OS gives nonces as unpredictable, and 96
    /// random bits per nonce keep AES-GCM's collision bound (NIST SP 800-38D 8.2.2) as before.
    rng: Mutex<StdRng>,
    /// Recently computed resident-ID blind indexes (see [`IdIndexMemo`]).
    memo: Mutex<IdIndexMemo>,
    /// HMAC keyed with the chunk key (`ykt/chunk/v1`), from which [`Vault::chunk_cipher`]
    /// derives one AES-256-GCM key per sealed document.
    chunk: HmacSha256,
}

/// Slots of [`IdIndexMemo`]: a power of two, several intake chunks (4,096 lines) wide.
const MEMO_SLOTS: usize = 1 << 15;

/// A direct-mapped memo of `resident ID → blind index`. An import asks for the index of the
/// same ID about six times (card, death, already-paid and exclusive lookups, the decrypted
/// card's check, the stored line), each an HMAC-SHA256; with the memo each line's index is
/// computed once. A slot holds the last ID that hashed to it, so the memo is a fixed 1.2 MB
/// and a miss only costs the HMAC. It holds nothing the process did not already hold: the
/// IDs it was asked about.
struct IdIndexMemo {
    slots: Vec<Option<([u8; 18], BlindIndex)>>,
}

impl IdIndexMemo {
    fn new() -> IdIndexMemo {
        IdIndexMemo {
            slots: vec![None; MEMO_SLOTS],
        }
    }
    fn slot(id: &[u8; 18]) -> usize {
        // The last 8 characters (birth day, sequence, check) vary the most.
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&id[10..]);
        let h = u64::from_le_bytes(tail).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 40) as usize & (MEMO_SLOTS - 1)
    }
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for HMAC.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl Vault {
    /// A vault from the 32-byte master key.
    pub fn new(master: [u8; 32]) -> Vault {
        let enc = derive(&master, b"ykt/enc/v1");
        let idx = derive(&master, b"ykt/idx/v1");
        let check = hex::encode(&derive(&master, b"ykt/check/v1")[..16]);
        let chunk = derive(&master, b"ykt/chunk/v1");
        let cipher = Aes256Gcm::new(&enc.into());
        let idx = <HmacSha256 as Mac>::new_from_slice(&idx).unwrap_or_else(|_| unreachable!());
        let chunk = <HmacSha256 as Mac>::new_from_slice(&chunk).unwrap_or_else(|_| unreachable!());
        Vault {
            inner: Arc::new(Inner {
                cipher,
                idx,
                check,
                rng: Mutex::new(StdRng::from_entropy()),
                memo: Mutex::new(IdIndexMemo::new()),
                chunk,
            }),
        }
    }

    /// A vault from the master key written as 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Vault> {
        let bytes = hex::decode(s.trim()).map_err(|_| StoreError::Key {
            reason: "主密钥应为64位十六进制数字 (the master key must be 64 hex digits)".into(),
        })?;
        let master: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Key {
            reason: "主密钥应为32字节 (the master key must be 32 bytes)".into(),
        })?;
        Ok(Vault::new(master))
    }

    /// A new random master key: the vault and the key as hex (to be stored by the caller).
    pub fn generate() -> (Vault, String) {
        let mut master = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut master);
        let hex = hex::encode(master);
        (Vault::new(master), hex)
    }

    /// Encrypt `plain`: `nonce (12) || ciphertext || tag (16)`.
    pub fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        self.seal(b"", plain)
    }

    /// Decrypt what [`Vault::encrypt`] produced.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        self.open(b"", sealed)
    }

    /// Encrypt with associated data `aad` (authenticated, not stored): decrypting needs the
    /// same `aad`, so a ciphertext cannot be moved to a context with another `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        {
            // A panic elsewhere while holding the lock leaves the generator's state intact.
            let mut rng = self.inner.rng.lock().unwrap_or_else(|e| e.into_inner());
            rng.fill_bytes(&mut nonce);
        }
        // One buffer: the nonce, then the plaintext encrypted in place, then the tag.
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        // AES-GCM encryption fails only for inputs longer than 64 GiB.
        match self.inner.cipher.encrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            aad,
            &mut out[NONCE_LEN..],
        ) {
            Ok(tag) => out.extend_from_slice(&tag),
            Err(_) => out.truncate(NONCE_LEN),
        }
        out
    }

    /// Decrypt what [`Vault::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(StoreError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.inner
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| StoreError::Decrypt)
    }

    /// Encrypt a string.
    pub fn encrypt_str(&self, plain: &str) -> Vec<u8> {
        self.encrypt(plain.as_bytes())
    }

    /// Decrypt to a string.
    pub fn decrypt_str(&self, sealed: &[u8]) -> Result<String> {
        String::from_utf8(self.decrypt(sealed)?).map_err(|_| StoreError::Decrypt)
    }

    /// `HMAC-SHA256(idx_key, kind_tag || 0x00 || value)`, first 16 bytes. Resident IDs are
    /// memoised (see [`IdIndexMemo`]): the same answer, computed once.
    pub fn blind_index(&self, kind: IndexKind, value: &str) -> BlindIndex {
        let Some(id) = (kind == IndexKind::ResidentId)
            .then(|| <[u8; 18]>::try_from(value.as_bytes()).ok())
            .flatten()
        else {
            return self.compute_index(kind, value);
        };
        let slot = IdIndexMemo::slot(&id);
        {
            let memo = self.inner.memo.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((held, idx)) = &memo.slots[slot]
                && *held == id
            {
                return *idx;
            }
        }
        let idx = self.compute_index(kind, value);
        let mut memo = self.inner.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.slots[slot] = Some((id, idx));
        idx
    }

    fn compute_index(&self, kind: IndexKind, value: &str) -> BlindIndex {
        let mut mac = self.inner.idx.clone();
        mac.update(kind.tag());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; INDEX_LEN];
        out.copy_from_slice(&full[..INDEX_LEN]);
        out
    }

    /// The cipher of one document sealed in large chunks (a released order's detail):
    /// AES-256-GCM under `HMAC-SHA256(chunk_key, context)`, where `context` names the
    /// document and carries a random salt of its own, so every document, and every rewrite
    /// of one, has a key of its own and a chunk's nonce can be its sequence number.
    pub fn chunk_cipher(&self, context: &[u8]) -> ChunkCipher {
        let mut mac = self.inner.chunk.clone();
        mac.update(context);
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        ChunkCipher {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    /// Random bytes from the vault's generator (a chunked document's salt).
    pub fn random_salt(&self) -> [u8; 16] {
        let mut salt = [0u8; 16];
        let mut rng = self.inner.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.fill_bytes(&mut salt);
        salt
    }

    /// A key-check value (hex of 16 bytes of `HMAC-SHA256(master, "ykt/check/v1")`): identifies
    /// the key without revealing it or either derived key. Stored in the database.
    pub fn check_value(&self) -> &str {
        &self.inner.check
    }
}

/// The cipher of one chunked document (see [`Vault::chunk_cipher`]). Chunk `seq`'s nonce is
/// `seq` (big-endian, 12 bytes): unique under the document's own key. A chunk is stored as
/// `ciphertext || tag (16)`.
pub struct ChunkCipher {
    cipher: Aes256Gcm,
}

impl ChunkCipher {
    fn nonce(seq: u64) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[4..].copy_from_slice(&seq.to_be_bytes());
        n
    }

    /// Encrypt `buf` in place as chunk `seq` and append the tag.
    pub fn seal_in_place(&self, seq: u64, aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&Self::nonce(seq)), aad, buf)
            .map_err(|_| StoreError::Invalid {
                reason: "分块过大，无法加密 (chunk too large to seal)".into(),
            })?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Authenticate and decrypt chunk `seq` in place (the tag removed). A chunk altered,
    /// moved to another position or document, or truncated is refused
    /// ([`StoreError::Decrypt`]) and `buf` is not to be used.
    pub fn open_in_place(&self, seq: u64, aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        if buf.len() < TAG_LEN {
            return Err(StoreError::Decrypt);
        }
        let tag = buf.split_off(buf.len() - TAG_LEN);
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&Self::nonce(seq)),
                aad,
                buf,
                aes_gcm::Tag::from_slice(&tag),
            )
            .map_err(|_| StoreError::Decrypt)
    }
}

impl fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChunkCipher { .. }")
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault { .. }")
    }
}

/// The master key kept in a file as 64 hex digits.
pub struct KeyFile;

impl KeyFile {
    /// Read the key from `path`; when the file does not exist, create it (and its parent
    /// directories) with a new random key, readable by the owner only (mode 0600). Returns the
    /// vault and whether the key was created.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<(Vault, bool)> {
        let path = path.as_ref();
        let io = |source: std::io::Error| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                Ok((Vault::from_hex(&text)?, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let (vault, hex) = Vault::generate();
                write_new_private(path, format!("{hex}\n").as_bytes()).map_err(io)?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok((vault, true))
            }
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(unix)]
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
        tracing::warn!(
            path = %path.display(),
            "the master key file is readable by other users; restrict it to mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let (v, hex) = Vault::generate();
        assert_eq!(hex.len(), 64);
        let ct = v.encrypt(b"230102199001011234");
        assert_eq!(ct.len(), NONCE_LEN + 18 + TAG_LEN);
        assert_eq!(
            v.decrypt(&ct).ok().as_deref(),
            Some(&b"230102199001011234"[..])
        );
        // Random nonce: same plaintext, different ciphertext.
        assert_ne!(ct, v.encrypt(b"230102199001011234"));
        let mut bad = ct.clone();
        bad[NONCE_LEN] ^= 1;
        assert!(matches!(v.decrypt(&bad), Err(StoreError::Decrypt)));
        assert!(matches!(v.decrypt(&ct[..10]), Err(StoreError::Decrypt)));
        // Another key cannot decrypt.
        let (other, _) = Vault::generate();
        assert!(other.decrypt(&ct).is_err());
        // AAD binds the context.
        let s = v.seal(b"a", b"x");
        assert!(v.open(b"b", &s).is_err());
        assert_eq!(v.open(b"a", &s).ok().as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn blind_index_is_keyed_and_kind_separated() {
        let v = Vault::from_hex(&"11".repeat(32)).expect("valid key");
        let w = Vault::from_hex(&"22".repeat(32)).expect("valid key");
        let a = v.blind_index(IndexKind::ResidentId, "123");
        assert_eq!(a, v.blind_index(IndexKind::ResidentId, "123"));
        assert_ne!(a, v.blind_index(IndexKind::Account, "123"));
        assert_ne!(a, v.blind_index(IndexKind::ResidentId, "124"));
        // Memoised resident IDs give the HMAC's answer, also after other IDs took the slots.
        let ids: Vec<String> = (0..3 * MEMO_SLOTS as u64)
            .step_by(997)
            .map(|n| format!("{:018}", 230102199001010000u64 + n))
            .collect();
        for round in 0..2 {
            for id in &ids {
                assert_eq!(
                    v.blind_index(IndexKind::ResidentId, id),
                    v.compute_index(IndexKind::ResidentId, id),
                    "round {round}"
                );
            }
        }
        assert_ne!(
            v.blind_index(IndexKind::ResidentId, &ids[0]),
            v.blind_index(IndexKind::Account, &ids[0])
        );
        assert_ne!(a, w.blind_index(IndexKind::ResidentId, "123"));
        assert_ne!(v.check_value(), w.check_value());
    }

    #[test]
    fn from_hex_rejects_bad_keys_without_echoing_them() {
        for bad in ["zz", "11", &"1".repeat(63), &"11".repeat(33)] {
            match Vault::from_hex(bad) {
                Err(e @ StoreError::Key { .. }) => assert!(!e.to_string().contains(bad)),
                other => panic!("expected a key error, got {other:?}"),
            }
        }
        let v = Vault::from_hex(&"ab".repeat(32)).expect("valid key");
        assert_eq!(format!("{v:?}"), "Vault { .. }");
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/master.key");
        let (v1, created) = KeyFile::load_or_create(&path).expect("create");
        assert!(created);
        let (v2, created) = KeyFile::load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(v1.check_value(), v2.check_value());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
