//! Text encoding detection and a streaming decoding `Read` adaptor.
//!
//! Detection looks at a sample (the first [`SAMPLE_LEN`] bytes):
//! 1. a UTF-8 byte-order mark → UTF-8 (BOM), the mark is removed;
//! 2. a UTF-16 byte-order mark → refused (Excel's "Unicode text" export);
//! 3. the sample is valid UTF-8 (a multi-byte character cut at the end of the sample is
//!    allowed) → UTF-8;
//! 4. otherwise GB18030 (a superset of GBK); labelled GB18030 if a four-byte GB18030
//!    sequence occurs in the sample, GBK otherwise. Both are decoded with the GB18030 decoder.
//!
//! Decoding never substitutes U+FFFD: the first malformed byte anywhere in the file turns
//! into an error that carries the (physical, 1-based) line it is on.
//!
//! Line ends are normalised on the way: `\r\n` and a lone `\r` become `\n`. The CSV parser
//! treats all three as record terminators anyway; normalising lets the table reader count
//! physical lines (and so blank lines, which the parser skips) from `\n` alone. Inside a
//! quoted multi-line cell this turns CRLF into LF, as Excel itself stores line breaks. A
//! final line end is added when the file does not end with one, so every record is
//! terminated alike.

use crate::table::TextEncoding;
use encoding_rs::{Decoder, DecoderResult, GB18030, UTF_8};
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many bytes of a CSV file encoding detection looks at.
pub(crate) const SAMPLE_LEN: usize = 1 << 20;

/// What [`detect`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detected {
    Text(TextEncoding),
    /// UTF-16 (little- or big-endian) by its BOM: not supported.
    Utf16,
}

/// Detect the encoding of a text file from its first bytes. `at_eof` says the sample is the
/// whole file (so an incomplete UTF-8 sequence at its end is an error, not a cut).
pub(crate) fn detect(sample: &[u8], at_eof: bool) -> Detected {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Detected::Text(TextEncoding::Utf8Bom);
    }
    if sample.starts_with(&[0xFF, 0xFE]) || sample.starts_with(&[0xFE, 0xFF]) {
        return Detected::Utf16;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => return Detected::Text(TextEncoding::Utf8),
        // `error_len() == None`: the sample ends inside a multi-byte character. That is the
        // sample boundary cutting a character, unless the sample is the whole file.
        Err(e) if e.error_len().is_none() && !at_eof => {
            return Detected::Text(TextEncoding::Utf8);
        }
        Err(_) => {}
    }
    if has_gb18030_four_byte(sample) {
        Detected::Text(TextEncoding::Gb18030)
    } else {
        Detected::Text(TextEncoding::Gbk)
    }
}

/// Whether `bytes` contain a GB18030 four-byte sequence
/// (`[81-FE][30-39][81-FE][30-39]`), walking the GB18030 byte structure.
pub(crate) fn has_gb18030_four_byte(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x81..=0xFE).contains(&b) {
            match bytes.get(i + 1) {
                Some(b2) if (0x30..=0x39).contains(b2) => {
                    if let (Some(b3), Some(b4)) = (bytes.get(i + 2), bytes.get(i + 3))
                        && (0x81..=0xFE).contains(b3)
                        && (0x30..=0x39).contains(b4)
                    {
                        return true;
                    }
                    i += 2;
                }
                Some(_) => i += 2,
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    false
}

/// The payload of the `io::Error` a [`DecodingReader`] returns on a malformed byte.
#[derive(Debug)]
pub(crate) struct Malformed {
    /// 1-based physical line of the malformed byte.
    pub line: u64,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed byte sequence on line {}", self.line)
    }
}
impl std::error::Error for Malformed {}

/// The payload of the `io::Error` a [`DecodingReader`] returns when more than its budget of
/// bytes were read without the budget being reset (one record larger than the limit).
#[derive(Debug)]
pub(crate) struct BudgetExceeded {
    /// 1-based physical line reached when the budget ran out.
    pub line: u64,
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record too large (line {})", self.line)
    }
}
impl std::error::Error for BudgetExceeded {}

const IN_BUF: usize = 64 * 1024;
const OUT_BUF: usize = 64 * 1024;

/// A `Read` adaptor turning bytes in some encoding into UTF-8, in bounded memory (two 64 KiB
/// buffers), without ever substituting U+FFFD.
///
/// It also enforces a *budget*: a shared counter of bytes handed out, which the consumer
/// resets after each complete record. If it passes `limit`, reading fails with
/// [`BudgetExceeded`], so a file with an unbalanced quote cannot make the CSV parser buffer
/// the rest of the file as one record.
pub(crate) struct DecodingReader<R> {
    inner: R,
    decoder: Decoder,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    in_eof: bool,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    finished: bool,
    /// Set when a malformed sequence was met: the line it is on. Sticky.
    malformed_line: Option<u64>,
    /// '\n' bytes handed out so far.
    lines: u64,
    /// The last decoded byte was a '\r' (turned into '\n'): drop a '\n' right after it.
    after_cr: bool,
    /// Some output was produced and its last byte was not a line end.
    open_line: bool,
    budget: Arc<AtomicU64>,
    limit: u64,
}

impl<R: Read> DecodingReader<R> {
    pub(crate) fn new(
        inner: R,
        encoding: TextEncoding,
        budget: Arc<AtomicU64>,
        limit: u64,
    ) -> Self {
        let decoder = match encoding {
            TextEncoding::Utf8 => UTF_8.new_decoder_without_bom_handling(),
            TextEncoding::Utf8Bom => UTF_8.new_decoder_with_bom_removal(),
            TextEncoding::Gbk | TextEncoding::Gb18030 => GB18030.new_decoder_without_bom_handling(),
        };
        DecodingReader {
            inner,
            decoder,
            inbuf: vec![0; IN_BUF],
            in_pos: 0,
            in_len: 0,
            in_eof: false,
            out: vec![0; OUT_BUF],
            out_pos: 0,
            out_len: 0,
            finished: false,
            malformed_line: None,
            lines: 0,
            after_cr: false,
            open_line: false,
            budget,
            limit,
        }
    }

    /// Capacity of the internal buffers (for tests asserting memory stays bounded).
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.inbuf.capacity() + self.out.capacity()
    }

    fn refill(&mut self) -> io::Result<()> {
        loop {
            match self.inner.read(&mut self.inbuf) {
                Ok(0) => {
                    self.in_eof = true;
                    self.in_pos = 0;
                    self.in_len = 0;
                    return Ok(());
                }
                Ok(n) => {
                    self.in_pos = 0;
                    self.in_len = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Rewrite `\r\n` and lone `\r` as `\n` in place; returns the new length. `after_cr` carries
/// "the previous chunk ended with `\r`" across calls.
///
/// Works segment by segment between carriage returns (found a block at a time), so text
/// with CRLF line ends costs one `memmove` per line rather than a branch per byte.
fn normalise_line_ends(buf: &mut [u8], after_cr: &mut bool) -> usize {
    let n = buf.len();
    if n == 0 {
        return 0;
    }
    let mut r = 0;
    if *after_cr {
        *after_cr = false;
        if buf[0] == b'\n' {
            r = 1;
        }
    }
    let mut w = 0;
    loop {
        let Some(p) = find_cr(&buf[r..]) else {
            if w != r {
                buf.copy_within(r..n, w);
            }
            return w + (n - r);
        };
        let cr = r + p;
        if w != r {
            buf.copy_within(r..cr, w);
        }
        w += cr - r;
        buf[w] = b'\n';
        w += 1;
        r = cr + 1;
        if r == n {
            *after_cr = true;
            return w;
        }
        if buf[r] == b'\n' {
            r += 1;
        }
    }
}

/// Position of the first `\r`, testing 32 bytes at a time (the block test vectorises).
fn find_cr(b: &[u8]) -> Option<usize> {
    const BLOCK: usize = 32;
    let mut i = 0;
    while i + BLOCK <= b.len() {
        if b[i..i + BLOCK]
            .iter()
            .fold(false, |acc, &c| acc | (c == b'\r'))
        {
            break;
        }
        i += BLOCK;
    }
    b[i..].iter().position(|&c| c == b'\r').map(|p| i + p)
}

fn count_newlines(b: &[u8]) -> u64 {
    crate::table::count_byte(b, b'\n')
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.out_pos < self.out_len {
                let used = self.budget.load(Ordering::Relaxed);
                if used > self.limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        BudgetExceeded {
                            line: self.lines + 1,
                        },
                    ));
                }
                let n = buf.len().min(self.out_len - self.out_pos);
                let chunk = &self.out[self.out_pos..self.out_pos + n];
                buf[..n].copy_from_slice(chunk);
                self.lines += count_newlines(chunk);
                self.out_pos += n;
                self.budget.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(n);
            }
            if let Some(line) = self.malformed_line {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    Malformed { line },
                ));
            }
            if self.finished {
                if self.open_line {
                    // The file does not end with a line end: add one.
                    self.open_line = false;
                    buf[0] = b'\n';
                    self.lines += 1;
                    return Ok(1);
                }
                return Ok(0);
            }
            if self.in_pos == self.in_len && !self.in_eof {
                self.refill()?;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.inbuf[self.in_pos..self.in_len],
                &mut self.out,
                self.in_eof,
            );
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = normalise_line_ends(&mut self.out[..written], &mut self.after_cr);
            let written = self.out_len;
            if written > 0 {
                self.open_line = self.out[written - 1] != b'\n';
            }
            match result {
                DecoderResult::InputEmpty => {
                    if self.in_eof {
                        self.finished = true;
                    }
                }
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(_, _) => {
                    self.malformed_line =
                        Some(self.lines + count_newlines(&self.out[..written]) + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], enc: TextEncoding) -> io::Result<String> {
        let mut r = DecodingReader::new(bytes, enc, Arc::new(AtomicU64::new(0)), u64::MAX);
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn detects_bom_utf8_gbk_gb18030() {
        assert_eq!(
            detect(b"\xEF\xBB\xBFa,b", true),
            Detected::Text(TextEncoding::Utf8Bom)
        );
        assert_eq!(
            detect("姓名,身份证号码".as_bytes(), true),
            Detected::Text(TextEncoding::Utf8)
        );
        let (gbk, _, _) = GB18030.encode("姓名,张三");
        assert_eq!(detect(&gbk, true), Detected::Text(TextEncoding::Gbk));
        // 𬌗 (U+2C317, CJK Extension E) is a four-byte sequence in GB18030.
        let (gb, _, _) = GB18030.encode("姓名,张𬌗");
        assert_eq!(detect(&gb, true), Detected::Text(TextEncoding::Gb18030));
        // 䶮 (U+4DAE) has a two-byte code in GB18030-2022 (encoding_rs follows it).
        let (gb, _, _) = GB18030.encode("姓名,李䶮");
        assert_eq!(detect(&gb, true), Detected::Text(TextEncoding::Gbk));
        assert_eq!(detect(b"\xFF\xFEa\0", true), Detected::Utf16);
    }

    #[test]
    fn utf8_cut_at_sample_boundary_is_still_utf8() {
        let s = "张".as_bytes();
        assert_eq!(detect(&s[..2], false), Detected::Text(TextEncoding::Utf8));
        // The same bytes as the whole file are not UTF-8.
        assert_eq!(detect(&s[..2], true), Detected::Text(TextEncoding::Gbk));
    }

    #[test]
    fn decodes_and_strips_bom() {
        assert_eq!(
            decode_all(b"\xEF\xBB\xBFab\n", TextEncoding::Utf8Bom).unwrap(),
            "ab\n"
        );
        let (gb, _, _) = GB18030.encode("李䶮𬌗\n");
        assert_eq!(decode_all(&gb, TextEncoding::Gb18030).unwrap(), "李䶮𬌗\n");
    }

    #[test]
    fn line_ends_are_normalised_across_chunk_boundaries() {
        assert_eq!(
            decode_all(b"a\r\nb\rc\n\r\r\nd", TextEncoding::Utf8).unwrap(),
            "a\nb\nc\n\n\nd\n"
        );
        assert_eq!(decode_all(b"a\r", TextEncoding::Utf8).unwrap(), "a\n");
        assert_eq!(decode_all(b"", TextEncoding::Utf8).unwrap(), "");
        let mut after_cr = false;
        let mut first = *b"x\r";
        let mut second = *b"\ny";
        assert_eq!(normalise_line_ends(&mut first, &mut after_cr), 2);
        assert_eq!(normalise_line_ends(&mut second, &mut after_cr), 1);
        assert_eq!(&second[..1], b"y");
    }

    /// The segment-wise normaliser gives what a byte-at-a-time one gives, for any chunking.
    #[test]
    fn line_end_normaliser_matches_the_byte_loop() {
        fn reference(chunks: &[&[u8]]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut after_cr = false;
            for c in chunks {
                for &b in *c {
                    if b == b'\n' && after_cr {
                        after_cr = false;
                        continue;
                    }
                    after_cr = b == b'\r';
                    out.push(if b == b'\r' { b'\n' } else { b });
                }
            }
            out
        }
        let text: Vec<u8> = b"ab\r\ncd\r\r\nef\n\rg\r"
            .iter()
            .chain(b"x\r\n".repeat(40).iter())
            .chain(b"\r\n\r\n\n\r".iter())
            .copied()
            .collect();
        for split in 0..text.len() {
            for split2 in split..text.len().min(split + 40) {
                let chunks = [&text[..split], &text[split..split2], &text[split2..]];
                let mut after_cr = false;
                let mut out = Vec::new();
                for c in chunks {
                    let mut c = c.to_vec();
                    let n = normalise_line_ends(&mut c, &mut after_cr);
                    out.extend_from_slice(&c[..n]);
                }
                assert_eq!(out, reference(&chunks), "split at {split}, {split2}");
            }
        }
    }

    #[test]
    fn malformed_bytes_report_the_line() {
        let e = decode_all(b"a\nb\n\xFFc", TextEncoding::Utf8).unwrap_err();
        let m = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<Malformed>())
            .unwrap();
        assert_eq!(m.line, 3);
        let e = decode_all(b"a\r\n\xFF\xFF", TextEncoding::Gbk).unwrap_err();
        let m = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<Malformed>())
            .unwrap();
        assert_eq!(m.line, 2);
    }

    #[test]
    fn small_reads_and_large_input() {
        let text = "张三,1\n".repeat(50_000);
        assert!(text.ends_with('\n'));
        let (gb, _, _) = GB18030.encode(&text);
        let mut r = DecodingReader::new(
            &gb[..],
            TextEncoding::Gbk,
            Arc::new(AtomicU64::new(0)),
            u64::MAX,
        );
        let mut out = Vec::new();
        let mut small = [0u8; 1];
        loop {
            let n = r.read(&mut small).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&small[..n]);
            if out.len() > 100 {
                break;
            }
        }
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        out.extend(rest);
        assert_eq!(String::from_utf8(out).unwrap(), text);
        assert!(r.buffer_capacity() <= IN_BUF + OUT_BUF);
    }

    #[test]
    fn budget_stops_runaway_records() {
        let budget = Arc::new(AtomicU64::new(0));
        let data = vec![b'a'; 300_000];
        let mut r = DecodingReader::new(&data[..], TextEncoding::Utf8, budget, 100_000);
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(
            e.get_ref()
                .and_then(|e| e.downcast_ref::<BudgetExceeded>())
                .is_some()
        );
    }
}
