//! A tiny reader of a zip file's central directory, used to refuse zip bombs before calamine
//! inflates anything.
//!
//! Only the central directory is read (its size is capped), never any compressed data. Each
//! entry's *declared* uncompressed and compressed sizes are checked: uncompressed size at most
//! [`MAX_UNCOMPRESSED`], and compression ratio at most [`MAX_RATIO`]:1 for entries over 1 MiB.
//!
//! The declared sizes can lie (the `zip` crate does not stop inflating at the declared size,
//! and one huge cell is buffered whole). So every XML part that passes is then inflated once
//! into a fixed 64 KiB buffer, counting the bytes it really produces, and refused as soon as
//! it produces more than it declared ([`ZipProblem::Lies`]): memory stays bounded whatever the
//! archive claims, and a forged part costs at most its declared size in inflating time.

use std::io::{self, Read, Seek, SeekFrom};

/// Largest uncompressed size accepted for any entry (2 GiB).
pub(crate) const MAX_UNCOMPRESSED: u64 = 2 << 30;
/// Largest compression ratio accepted for an entry larger than [`RATIO_FLOOR`].
pub(crate) const MAX_RATIO: u64 = 200;
/// Entries smaller than this are not ratio-checked (small XML parts compress very well).
pub(crate) const RATIO_FLOOR: u64 = 1 << 20;
/// Largest central directory we are willing to read.
const MAX_CENTRAL_DIR: u64 = 64 << 20;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ZipProblem {
    /// The archive structure cannot be read.
    Corrupt(&'static str),
    /// An entry is too large or too highly compressed.
    TooLarge {
        entry: String,
        uncompressed: u64,
        compressed: u64,
    },
    /// An entry inflates to more than the central directory declares (a forged size).
    Lies {
        entry: String,
        declared: u64,
        /// How far inflating went before it was stopped (more than `declared`).
        inflated: u64,
    },
}

/// One entry's sizes as the central directory declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntrySizes {
    pub name: String,
    pub compressed: u64,
    pub uncompressed: u64,
    /// Compression method (0 stored, 8 deflate).
    pub method: u64,
    /// Where the entry's local header starts.
    pub local_offset: u64,
}

fn u16_at(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
}
fn u32_at(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
}
fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

fn read_exact_at<R: Read + Seek>(r: &mut R, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    r.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"));
    }
    Ok(buf)
}

/// Read the central directory's entry list (names and declared sizes).
pub(crate) fn entries<R: Read + Seek>(r: &mut R) -> Result<Vec<EntrySizes>, ZipProblem> {
    let corrupt = |m: &'static str| move |_| ZipProblem::Corrupt(m);
    let len = r.seek(SeekFrom::End(0)).map_err(corrupt("cannot seek"))?;
    if len < 22 {
        return Err(ZipProblem::Corrupt("file too short"));
    }
    let tail_len = len.min(22 + 65_535);
    let tail_start = len - tail_len;
    let tail =
        read_exact_at(r, tail_start, tail_len).map_err(corrupt("cannot read end of file"))?;
    // End of central directory record: search backwards for its signature.
    let eocd = (0..=tail.len() - 22)
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4B, 0x05, 0x06])
        .ok_or(ZipProblem::Corrupt("no end of central directory"))?;
    let e = &tail[eocd..];
    let bad = ZipProblem::Corrupt("bad end of central directory");
    let mut count = u16_at(e, 10).ok_or(ZipProblem::Corrupt("bad end of central directory"))?;
    let mut cd_size = u32_at(e, 12).ok_or(ZipProblem::Corrupt("bad end of central directory"))?;
    let mut cd_offset = u32_at(e, 16).ok_or(bad)?;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        // ZIP64: the locator sits just before the EOCD record.
        let loc_pos = (tail_start + eocd as u64)
            .checked_sub(20)
            .ok_or(ZipProblem::Corrupt("no zip64 locator"))?;
        let loc = read_exact_at(r, loc_pos, 20).map_err(corrupt("no zip64 locator"))?;
        if loc[0..4] != [0x50, 0x4B, 0x06, 0x07] {
            return Err(ZipProblem::Corrupt("no zip64 locator"));
        }
        let rec_pos = u64_at(&loc, 8).ok_or(ZipProblem::Corrupt("bad zip64 locator"))?;
        if rec_pos >= len {
            return Err(ZipProblem::Corrupt("bad zip64 locator"));
        }
        let rec = read_exact_at(r, rec_pos, 56).map_err(corrupt("bad zip64 record"))?;
        if rec[0..4] != [0x50, 0x4B, 0x06, 0x06] {
            return Err(ZipProblem::Corrupt("bad zip64 record"));
        }
        count = u64_at(&rec, 32).ok_or(ZipProblem::Corrupt("bad zip64 record"))?;
        cd_size = u64_at(&rec, 40).ok_or(ZipProblem::Corrupt("bad zip64 record"))?;
        cd_offset = u64_at(&rec, 48).ok_or(ZipProblem::Corrupt("bad zip64 record"))?;
    }
    if cd_size > MAX_CENTRAL_DIR {
        return Err(ZipProblem::Corrupt("central directory too large"));
    }
    if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) {
        return Err(ZipProblem::Corrupt("central directory outside the file"));
    }
    let cd =
        read_exact_at(r, cd_offset, cd_size).map_err(corrupt("cannot read central directory"))?;
    let mut out = Vec::new();
    let mut p = 0usize;
    let hdr = || ZipProblem::Corrupt("bad central directory entry");
    for _ in 0..count {
        if cd.get(p..p + 4) != Some(&[0x50, 0x4B, 0x01, 0x02][..]) {
            return Err(hdr());
        }
        let (
            Some(method),
            Some(mut compressed),
            Some(mut uncompressed),
            Some(name_len),
            Some(extra_len),
            Some(comment_len),
            Some(mut local_offset),
        ) = (
            u16_at(&cd, p + 10),
            u32_at(&cd, p + 20),
            u32_at(&cd, p + 24),
            u16_at(&cd, p + 28),
            u16_at(&cd, p + 30),
            u16_at(&cd, p + 32),
            u32_at(&cd, p + 42),
        )
        else {
            return Err(hdr());
        };
        let name_start = p + 46;
        let name_end = name_start + name_len as usize;
        let extra_end = name_end + extra_len as usize;
        let next = extra_end + comment_len as usize;
        let (Some(name), Some(extra)) = (cd.get(name_start..name_end), cd.get(name_end..extra_end))
        else {
            return Err(hdr());
        };
        if uncompressed == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF || local_offset == 0xFFFF_FFFF {
            // ZIP64 extended information extra field (id 0x0001): the 8-byte values present
            // are, in order, the ones whose 4-byte field is 0xFFFFFFFF.
            let mut q = 0usize;
            let mut found = false;
            while q + 4 <= extra.len() {
                let (Some(id), Some(size)) = (u16_at(extra, q), u16_at(extra, q + 2)) else {
                    break;
                };
                let body = extra.get(q + 4..q + 4 + size as usize).unwrap_or(&[]);
                if id == 1 {
                    let mut k = 0;
                    if uncompressed == 0xFFFF_FFFF {
                        uncompressed =
                            u64_at(body, k).ok_or(ZipProblem::Corrupt("bad zip64 extra field"))?;
                        k += 8;
                    }
                    if compressed == 0xFFFF_FFFF {
                        compressed =
                            u64_at(body, k).ok_or(ZipProblem::Corrupt("bad zip64 extra field"))?;
                        k += 8;
                    }
                    if local_offset == 0xFFFF_FFFF {
                        local_offset =
                            u64_at(body, k).ok_or(ZipProblem::Corrupt("bad zip64 extra field"))?;
                    }
                    found = true;
                    break;
                }
                q += 4 + size as usize;
            }
            if !found {
                return Err(ZipProblem::Corrupt("missing zip64 extra field"));
            }
        }
        out.push(EntrySizes {
            name: String::from_utf8_lossy(name).into_owned(),
            compressed,
            uncompressed,
            method,
            local_offset,
        });
        p = next;
    }
    Ok(out)
}

/// Check every entry calamine may inflate (the XML parts: `*.xml`, `*.rels`, `*.vml`;
/// media such as a logo image are never read, and a flat-colour bitmap legitimately
/// compresses far beyond 200:1) against the size and ratio limits, then inflate each one
/// once to check that it produces no more than it declares.
pub(crate) fn check<R: Read + Seek>(r: &mut R) -> Result<(), ZipProblem> {
    let parts: Vec<EntrySizes> = entries(r)?
        .into_iter()
        .filter(|e| {
            let lower = e.name.to_ascii_lowercase();
            lower.ends_with(".xml") || lower.ends_with(".rels") || lower.ends_with(".vml")
        })
        .collect();
    for e in &parts {
        let too_big = e.uncompressed > MAX_UNCOMPRESSED;
        let too_dense = e.uncompressed > RATIO_FLOOR
            && e.uncompressed > MAX_RATIO.saturating_mul(e.compressed.max(1));
        if too_big || too_dense {
            return Err(ZipProblem::TooLarge {
                entry: e.name.clone(),
                uncompressed: e.uncompressed,
                compressed: e.compressed,
            });
        }
    }
    for e in &parts {
        inflates_as_declared(r, e)?;
    }
    Ok(())
}

/// Inflate one entry into a fixed buffer, counting; refuse it as soon as it produces more
/// than its declared uncompressed size. Methods other than stored and deflate are left to
/// calamine (which refuses them).
fn inflates_as_declared<R: Read + Seek>(r: &mut R, e: &EntrySizes) -> Result<(), ZipProblem> {
    let local = read_exact_at(r, e.local_offset, 30)
        .map_err(|_| ZipProblem::Corrupt("cannot read local header"))?;
    if local[0..4] != [0x50, 0x4B, 0x03, 0x04] {
        return Err(ZipProblem::Corrupt("bad local header"));
    }
    let (Some(name_len), Some(extra_len)) = (u16_at(&local, 26), u16_at(&local, 28)) else {
        return Err(ZipProblem::Corrupt("bad local header"));
    };
    let data = e.local_offset + 30 + name_len + extra_len;
    r.seek(SeekFrom::Start(data))
        .map_err(|_| ZipProblem::Corrupt("cannot seek to entry data"))?;
    let raw = r.take(e.compressed);
    let mut reader: Box<dyn Read + '_> = match e.method {
        0 => Box::new(raw),
        8 => Box::new(flate2::read::DeflateDecoder::new(raw)),
        _ => return Ok(()),
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut inflated = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n as u64,
            Err(_) => return Err(ZipProblem::Corrupt("bad deflate data")),
        };
        inflated += n;
        if inflated > e.uncompressed {
            return Err(ZipProblem::Lies {
                entry: e.name.clone(),
                declared: e.uncompressed,
                inflated,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A stored (uncompressed) one-entry zip with the given declared sizes.
    fn zip_with(name: &str, compressed: u32, uncompressed: u32) -> Vec<u8> {
        let mut z = Vec::new();
        // local header
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

    #[test]
    fn reads_declared_sizes() {
        let z = zip_with("xl/worksheets/sheet1.xml", 1000, 5000);
        let e = entries(&mut Cursor::new(z)).unwrap();
        assert_eq!(
            e,
            vec![EntrySizes {
                name: "xl/worksheets/sheet1.xml".into(),
                compressed: 1000,
                uncompressed: 5000,
                method: 0,
                local_offset: 0,
            }]
        );
    }

    #[test]
    fn refuses_bombs() {
        let z = zip_with("xl/sharedStrings.xml", 10_000, 100_000_000);
        assert!(matches!(
            check(&mut Cursor::new(z)),
            Err(ZipProblem::TooLarge { .. })
        ));
        let z = zip_with("xl/worksheets/sheet1.xml", 0xFFFF_FFF0, 0xFFFF_FFF0);
        assert!(matches!(
            check(&mut Cursor::new(z)),
            Err(ZipProblem::TooLarge { .. })
        ));
        let z = zip_with("xl/worksheets/sheet1.xml", 100, 20_000);
        assert_eq!(check(&mut Cursor::new(z)), Ok(()));
        // Media is never inflated by calamine.
        let z = zip_with("xl/media/image1.bmp", 10_000, 100_000_000);
        assert_eq!(check(&mut Cursor::new(z)), Ok(()));
    }

    /// A one-entry zip whose entry is `data` deflated, declaring `declared` bytes inflated.
    fn deflated_with(name: &str, data: &[u8], declared: u32) -> Vec<u8> {
        use std::io::Write;
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        let body = enc.finish().unwrap();
        let mut z = zip_with(name, body.len() as u32, declared);
        // Method 8 in both headers, the data after the local header.
        z[8] = 8;
        let local_len = 30 + name.len();
        z[local_len + 10] = 8;
        let mut out = z[..local_len].to_vec();
        out.extend_from_slice(&body);
        let shift = body.len() as u32;
        let mut rest = z[local_len..].to_vec();
        let n = rest.len();
        let cd_offset = u32::from_le_bytes(rest[n - 6..n - 2].try_into().unwrap()) + shift;
        rest[n - 6..n - 2].copy_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&rest);
        out
    }

    #[test]
    fn an_entry_inflating_beyond_its_declared_size_is_refused_while_inflating() {
        let sheet = vec![b'x'; 900_000];
        let honest = deflated_with("xl/worksheets/sheet1.xml", &sheet, 900_000);
        assert_eq!(check(&mut Cursor::new(honest)), Ok(()));
        let forged = deflated_with("xl/worksheets/sheet1.xml", &sheet, 100_000);
        match check(&mut Cursor::new(forged)) {
            Err(ZipProblem::Lies {
                declared, inflated, ..
            }) => {
                assert_eq!(declared, 100_000);
                assert!(inflated > declared && inflated <= declared + (64 << 10));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for bytes in [
            &b""[..],
            b"PK\x03\x04",
            b"PK\x05\x06\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(check(&mut Cursor::new(bytes.to_vec())).is_err());
        }
    }
}
