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

const IN_BUF: usize = 64 * 1024;
const OUT_BUF: usize = 64 * 1024;

/// A streaming decoder turning bytes in some encoding into UTF-8 text, in bounded memory
/// (64 KiB of input and of output at a time), without ever substituting U+FFFD.
///
/// [`DecodingReader::fill`] appends the next block of text to a `String` (the CSV splitter
/// parses it in place); the `Read` implementation hands the same text out as bytes.
///
/// GB18030 (and GBK) input goes through a fast path first ([`decode_gb18030_fast`]): runs of
/// ASCII are copied at once and two-byte sequences are looked up in a table that
/// `encoding_rs` fills, one entry the first time each pair is met. At the first sequence the
/// fast path does not handle (a malformed byte, a byte `0x80` or `0xFF`, a four-byte
/// sequence `encoding_rs` refuses), the rest of the file goes through `encoding_rs`'s own
/// decoder: the fast path only ever consumes whole characters, so that decoder starts in the
/// state it would have been in, and what comes out is exactly what it alone would give.
pub(crate) struct DecodingReader<R> {
    inner: R,
    decoder: Decoder,
    /// `Some` while GB18030 input is decoded by the fast path.
    fast: Option<PairTable>,
    /// The fast path stopped inside a sequence cut by the end of `inbuf`: read more first.
    need_more: bool,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    in_eof: bool,
    /// The last block, decoded but not yet normalised (`encoding_rs`).
    raw: String,
    /// The same for the fast path: [`OUT_BUF`] bytes and room for one 8-byte store.
    raw_fast: Vec<u8>,
    /// Normalised text not yet handed out by `read`.
    out: String,
    out_pos: usize,
    finished: bool,
    /// Set when a malformed sequence was met: the line it is on. Sticky.
    malformed_line: Option<u64>,
    /// '\n' bytes produced so far.
    lines: u64,
    /// The last decoded byte was a '\r' (turned into '\n'): drop a '\n' right after it.
    after_cr: bool,
    /// Some output was produced and its last byte was not a line end.
    open_line: bool,
}

impl<R: Read> DecodingReader<R> {
    pub(crate) fn new(inner: R, encoding: TextEncoding) -> Self {
        let (decoder, fast) = match encoding {
            TextEncoding::Utf8 => (UTF_8.new_decoder_without_bom_handling(), None),
            TextEncoding::Utf8Bom => (UTF_8.new_decoder_with_bom_removal(), None),
            TextEncoding::Gbk | TextEncoding::Gb18030 => (
                GB18030.new_decoder_without_bom_handling(),
                Some(PairTable::default()),
            ),
        };
        DecodingReader {
            inner,
            decoder,
            fast,
            need_more: false,
            inbuf: vec![0; IN_BUF],
            in_pos: 0,
            in_len: 0,
            in_eof: false,
            raw: String::new(),
            raw_fast: Vec::new(),
            out: String::new(),
            out_pos: 0,
            finished: false,
            malformed_line: None,
            lines: 0,
            after_cr: false,
            open_line: false,
        }
    }

    /// Capacity of the internal buffers (for tests asserting memory stays bounded).
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.inbuf.capacity() + self.raw.capacity() + self.raw_fast.capacity() + self.out.capacity()
    }

    /// Read more input, keeping the bytes not consumed yet (a sequence the fast path found
    /// cut by the end of the buffer) at the front.
    fn refill(&mut self) -> io::Result<()> {
        let keep = self.in_len - self.in_pos;
        self.inbuf.copy_within(self.in_pos..self.in_len, 0);
        self.in_pos = 0;
        self.in_len = keep;
        self.need_more = false;
        loop {
            match self.inner.read(&mut self.inbuf[keep..]) {
                Ok(0) => {
                    self.in_eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.in_len = keep + n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Append the next block of decoded text, line ends normalised, to `dst`: `Ok(false)` at
    /// the end of the input. A malformed sequence is an error carrying [`Malformed`] (after
    /// the text before it was handed out).
    pub(crate) fn fill(&mut self, dst: &mut String) -> io::Result<bool> {
        loop {
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
                    dst.push('\n');
                    self.lines += 1;
                    return Ok(true);
                }
                return Ok(false);
            }
            if !self.in_eof && (self.in_pos == self.in_len || self.need_more) {
                self.refill()?;
            }
            self.raw.clear();
            let input = &self.inbuf[self.in_pos..self.in_len];
            let before = dst.len();
            let result = match &mut self.fast {
                Some(table) => {
                    if self.raw_fast.len() != OUT_BUF + 8 {
                        self.raw_fast = vec![0; OUT_BUF + 8];
                    }
                    let (stop, read, text) =
                        decode_gb18030_fast(input, self.in_eof, &mut self.raw_fast, table);
                    normalise_into(text, dst, &mut self.after_cr);
                    self.in_pos += read;
                    match stop {
                        FastStop::InputEmpty => Some(DecoderResult::InputEmpty),
                        FastStop::OutputFull => Some(DecoderResult::OutputFull),
                        FastStop::NeedMore => {
                            self.need_more = true;
                            None
                        }
                        FastStop::Unsupported => {
                            // From here on `encoding_rs` decodes (see the type's documentation).
                            self.fast = None;
                            None
                        }
                    }
                }
                None => {
                    self.raw.reserve(OUT_BUF);
                    let (result, read) = self.decoder.decode_to_string_without_replacement(
                        input,
                        &mut self.raw,
                        self.in_eof,
                    );
                    normalise_into(&self.raw, dst, &mut self.after_cr);
                    self.in_pos += read;
                    Some(result)
                }
            };
            let written = &dst[before..];
            if !written.is_empty() {
                self.open_line = !written.ends_with('\n');
                self.lines += count_newlines(written.as_bytes());
            }
            match result {
                Some(DecoderResult::InputEmpty) => {
                    if self.in_eof {
                        self.finished = true;
                    }
                }
                Some(DecoderResult::OutputFull) | None => {}
                Some(DecoderResult::Malformed(_, _)) => {
                    self.malformed_line = Some(self.lines + 1);
                }
            }
            if dst.len() > before {
                return Ok(true);
            }
        }
    }
}

/// Append `src` to `dst` with `\r\n` and lone `\r` written as `\n`. `after_cr` carries "the
/// previous block ended with `\r`" across calls.
fn normalise_into(src: &str, dst: &mut String, after_cr: &mut bool) {
    if src.is_empty() {
        return;
    }
    let mut s = src;
    if *after_cr {
        *after_cr = false;
        s = s.strip_prefix('\n').unwrap_or(s);
    }
    // One copy per segment between carriage returns (none at all in most files).
    while let Some(cr) = memchr::memchr(b'\r', s.as_bytes()) {
        dst.push_str(&s[..cr]);
        dst.push('\n');
        s = &s[cr + 1..];
        if s.is_empty() {
            *after_cr = true;
            return;
        }
        s = s.strip_prefix('\n').unwrap_or(s);
    }
    dst.push_str(s);
}

fn count_newlines(b: &[u8]) -> u64 {
    crate::table::count_byte(b, b'\n')
}

/// Where [`decode_gb18030_fast`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FastStop {
    /// All the input was decoded.
    InputEmpty,
    /// The output block is full.
    OutputFull,
    /// A sequence is cut by the end of the input, which is not the end of the file.
    NeedMore,
    /// A sequence the fast path does not decode starts here.
    Unsupported,
}

/// The two-byte GB18030 sequences met so far, as `encoding_rs` decodes them: index
/// `(lead - 0x81) * 256 + trail`; `0` not looked up yet, [`PairTable::REFUSED`] not a
/// character on its own (left to `encoding_rs`'s decoder), anything else the character's
/// UTF-8 bytes, little-endian (its length follows from the first byte).
struct PairTable {
    utf8: Vec<u32>,
}

impl Default for PairTable {
    fn default() -> Self {
        PairTable {
            utf8: vec![0; 126 * 256],
        }
    }
}

impl PairTable {
    /// Not the UTF-8 of a non-ASCII character (whose first byte is 0xC2 or more).
    const REFUSED: u32 = 1;

    /// The UTF-8 bytes (four, the unused ones zero) and length of the character of the
    /// two-byte sequence `lead trail`; `None` when `encoding_rs` does not decode it as one
    /// character.
    fn get(&mut self, lead: u8, trail: u8) -> Option<([u8; 4], usize)> {
        let slot = usize::from(lead.wrapping_sub(0x81)) * 256 + usize::from(trail);
        let known = *self.utf8.get(slot)?;
        let entry = if known == 0 {
            let entry = one_char(&[lead, trail]).map_or(Self::REFUSED, |c| {
                let mut b = [0u8; 4];
                c.encode_utf8(&mut b);
                u32::from_le_bytes(b)
            });
            if let Some(s) = self.utf8.get_mut(slot) {
                *s = entry;
            }
            entry
        } else {
            known
        };
        let bytes = entry.to_le_bytes();
        let len = match bytes[0] {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return None,
        };
        Some((bytes, len))
    }
}

/// The one character `encoding_rs`'s GB18030 decoder makes of exactly `bytes` (a whole
/// sequence), `None` if it makes anything else of them.
fn one_char(bytes: &[u8]) -> Option<char> {
    let mut d = GB18030.new_decoder_without_bom_handling();
    let mut s = String::with_capacity(8);
    let (result, read) = d.decode_to_string_without_replacement(bytes, &mut s, true);
    if result != DecoderResult::InputEmpty || read != bytes.len() {
        return None;
    }
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_ascii() => Some(c),
        _ => None,
    }
}

/// Decode GB18030 `src` into `out` (at most [`OUT_BUF`] bytes; `out` is `OUT_BUF + 8` long)
/// as far as the fast path goes: ASCII eight bytes at a time, two-byte sequences by
/// [`PairTable`], four-byte sequences one at a time through `encoding_rs`. Returns where it
/// stopped, the input bytes consumed (always whole characters) and the text decoded.
/// `last`: `src` ends the file.
fn decode_gb18030_fast<'o>(
    src: &[u8],
    last: bool,
    out: &'o mut [u8],
    table: &mut PairTable,
) -> (FastStop, usize, &'o str) {
    let cut = if last {
        FastStop::Unsupported
    } else {
        FastStop::NeedMore
    };
    let (mut i, mut w) = (0, 0);
    // `out[..w]` only ever holds ASCII bytes (their high bit tested before `w` moves past
    // them) and whole UTF-8 encodings of `char`s (`char::encode_utf8`, here or in
    // `PairTable`): it is UTF-8 throughout.
    let stop = loop {
        if i >= src.len() {
            break FastStop::InputEmpty;
        }
        if w + 8 > OUT_BUF {
            break FastStop::OutputFull;
        }
        if let Some(chunk) = src.get(i..i + 8) {
            // Copy eight bytes, keep as many as are ASCII.
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            out[w..w + 8].copy_from_slice(&word);
            let high = u64::from_le_bytes(word) & 0x8080_8080_8080_8080;
            let ascii = (high.trailing_zeros() / 8) as usize;
            i += ascii;
            w += ascii;
            if ascii == 8 {
                continue;
            }
        } else if src[i].is_ascii() {
            out[w] = src[i];
            i += 1;
            w += 1;
            continue;
        }
        let b = src[i];
        if !(0x81..=0xFE).contains(&b) {
            break FastStop::Unsupported;
        }
        let Some(&t) = src.get(i + 1) else {
            break cut;
        };
        if (0x40..=0xFE).contains(&t) && t != 0x7F {
            let Some((bytes, len)) = table.get(b, t) else {
                break FastStop::Unsupported;
            };
            out[w..w + 4].copy_from_slice(&bytes);
            w += len;
            i += 2;
        } else if (0x30..=0x39).contains(&t) {
            let Some(seq) = src.get(i..i + 4) else {
                break cut;
            };
            let Some(c) = one_char(seq) else {
                break FastStop::Unsupported;
            };
            w += c.encode_utf8(&mut out[w..w + 4]).len();
            i += 4;
        } else {
            break FastStop::Unsupported;
        }
    };
    let text = &out[..w];
    debug_assert!(std::str::from_utf8(text).is_ok());
    // SAFETY: `text` is UTF-8 by construction (see the comment on the loop). Checking it
    // again with `str::from_utf8` cost about 400 instructions a roster line, a tenth of
    // `ykt check`'s work per line once the rest was made lean: hence the unchecked
    // conversion, in this one place.
    let text = unsafe { std::str::from_utf8_unchecked(text) };
    (stop, i, text)
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            let mut out = std::mem::take(&mut self.out);
            let more = self.fill(&mut out);
            self.out = out;
            if !more? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out.as_bytes()[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], enc: TextEncoding) -> io::Result<String> {
        let mut r = DecodingReader::new(bytes, enc);
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
        let mut out = String::new();
        normalise_into("x\r", &mut out, &mut after_cr);
        normalise_into("", &mut out, &mut after_cr);
        normalise_into("\ny", &mut out, &mut after_cr);
        assert_eq!(out, "x\ny");
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
                let mut out = String::new();
                for c in chunks {
                    normalise_into(std::str::from_utf8(c).unwrap(), &mut out, &mut after_cr);
                }
                assert_eq!(
                    out.as_bytes(),
                    reference(&chunks),
                    "split at {split}, {split2}"
                );
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
        let mut r = DecodingReader::new(&gb[..], TextEncoding::Gbk);
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
        assert!(r.buffer_capacity() <= IN_BUF + 3 * OUT_BUF);
    }

    /// A reader that hands out at most `n` bytes per read, so sequences are cut by the end of
    /// the decoder's input at every position.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// What `encoding_rs` alone makes of `bytes`: the normalised text, or the malformed line.
    fn reference(bytes: &[u8]) -> Result<String, u64> {
        let mut d = GB18030.new_decoder_without_bom_handling();
        let mut s = String::with_capacity(bytes.len() * 3 + 8);
        let (result, _) = d.decode_to_string_without_replacement(bytes, &mut s, true);
        let mut out = String::new();
        normalise_into(&s, &mut out, &mut false);
        match result {
            DecoderResult::Malformed(..) => Err(count_newlines(out.as_bytes()) + 1),
            _ => {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                Ok(out)
            }
        }
    }

    fn fast(bytes: &[u8], step: usize) -> Result<String, u64> {
        let mut r = DecodingReader::new(Trickle(bytes, step), TextEncoding::Gb18030);
        let mut s = String::new();
        r.read_to_string(&mut s).map(|_| s).map_err(|e| {
            e.get_ref()
                .and_then(|e| e.downcast_ref::<Malformed>())
                .map(|m| m.line)
                .unwrap_or(0)
        })
    }

    /// The fast GB18030 path gives what `encoding_rs` gives: every two-byte pair, four-byte
    /// sequences, malformed bytes, and any cut of the input.
    #[test]
    fn fast_gb18030_path_matches_encoding_rs() {
        for lead in 0x81..=0xFEu8 {
            let mut row = Vec::new();
            for trail in 0x30..=0xFFu8 {
                row.extend_from_slice(&[b'a', lead, trail, b'\n']);
            }
            for &step in &[1, 3, 64 * 1024] {
                // Each pair on its own line: a malformed one ends the text at its line.
                let lines: Vec<&[u8]> = row.chunks(4).collect();
                for line in lines.iter().step_by(7) {
                    assert_eq!(fast(line, step), reference(line), "{line:02x?}");
                }
            }
            let valid: Vec<u8> = row
                .chunks(4)
                .filter(|l| reference(l).is_ok())
                .flatten()
                .copied()
                .collect();
            assert_eq!(fast(&valid, 5), reference(&valid));
        }
        let (text, _, _) = GB18030.encode("姓名,李䶮𬌗\r\n张三€,1\r2\n\n");
        let mut samples: Vec<Vec<u8>> = vec![text.to_vec()];
        for bad in [
            &[0x80u8][..],
            &[0xFF],
            &[0x81],
            &[0x81, 0x30],
            &[0x81, 0x30, 0x81],
            &[0x84, 0x31, 0xA5, 0x30],
            &[0xFE, 0x39, 0xFE, 0x39],
        ] {
            for at in 0..=text.len() {
                let mut t = text.to_vec();
                t.splice(at..at, bad.iter().copied());
                samples.push(t);
            }
        }
        for t in &samples {
            for step in 1..=5 {
                assert_eq!(fast(t, step), reference(t), "{t:02x?} by {step}");
            }
        }
    }
}
