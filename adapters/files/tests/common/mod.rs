#![allow(dead_code)]

use std::path::{Path, PathBuf};
use ykt_kernel::ident::check_digit;

/// Write `bytes` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// GB18030 bytes of `s` (panics if unencodable: test data only).
pub fn gb18030(s: &str) -> Vec<u8> {
    let (b, _, had_errors) = encoding_rs::GB18030.encode(s);
    assert!(!had_errors);
    b.into_owned()
}

/// A valid 18-character resident ID from its first 17 digits.
pub fn valid_id(first17: &str) -> String {
    let b: [u8; 17] = first17.as_bytes().try_into().expect("17 digits");
    format!("{first17}{}", check_digit(&b))
}

/// A one-entry stored zip whose central directory declares the given sizes.
pub fn zip_declaring(name: &str, compressed: u32, uncompressed: u32) -> Vec<u8> {
    let mut z = Vec::new();
    z.extend_from_slice(&[0x50, 0x4B, 0x03, 0x04]);
    z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&compressed.to_le_bytes());
    z.extend_from_slice(&uncompressed.to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    let cd_offset = z.len() as u32;
    z.extend_from_slice(&[0x50, 0x4B, 0x01, 0x02]);
    z.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&compressed.to_le_bytes());
    z.extend_from_slice(&uncompressed.to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&[0; 12]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    let cd_size = z.len() as u32 - cd_offset;
    z.extend_from_slice(&[0x50, 0x4B, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&cd_size.to_le_bytes());
    z.extend_from_slice(&cd_offset.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}
