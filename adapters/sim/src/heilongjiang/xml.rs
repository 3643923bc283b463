//! The simulators' own reading and writing of the GB18030 XML messages of
//! `provinces/heilongjiang/docs/messages.md`: a small element tree. The platform's adapter has
//! its own implementation (`ykt_http::heilongjiang`), as a real peer would, so a mismatch
//! between the two sides shows up in the tests instead of being shared silently.

use encoding_rs::{GB18030, UTF_8};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use std::fmt::Write;

/// An element: name, attributes, child elements and (for leaves) text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct El {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<El>,
    pub text: String,
}

impl El {
    pub fn new(name: &str) -> El {
        El {
            name: name.to_owned(),
            ..El::default()
        }
    }
    /// A leaf `<name>text</name>`.
    pub fn leaf(name: &str, text: impl Into<String>) -> El {
        El {
            name: name.to_owned(),
            text: text.into(),
            ..El::default()
        }
    }
    pub fn attr(mut self, k: &str, v: impl Into<String>) -> El {
        self.attrs.push((k.to_owned(), v.into()));
        self
    }
    pub fn with(mut self, c: El) -> El {
        self.children.push(c);
        self
    }
    pub fn push(&mut self, c: El) {
        self.children.push(c);
    }
    pub fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn child_mut(&mut self, name: &str) -> Option<&mut El> {
        self.children.iter_mut().find(|c| c.name == name)
    }
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// Text of a child leaf, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.child(name).map(|c| c.text.as_str()).unwrap_or("")
    }
    /// Set (or add) a child leaf's text.
    pub fn set(&mut self, name: &str, text: impl Into<String>) {
        let text = text.into();
        match self.child_mut(name) {
            Some(c) => c.text = text,
            None => self.children.push(El::leaf(name, text)),
        }
    }
    pub fn attr_value(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn set_attr(&mut self, k: &str, v: impl Into<String>) {
        let v = v.into();
        match self.attrs.iter_mut().find(|(a, _)| a == k) {
            Some(slot) => slot.1 = v,
            None => self.attrs.push((k.to_owned(), v)),
        }
    }
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

fn write_el(o: &mut String, el: &El, depth: usize) {
    let pad = "  ".repeat(depth);
    let _ = write!(o, "{pad}<{}", el.name);
    for (k, v) in &el.attrs {
        let _ = write!(o, " {k}=\"{}\"", escape(v));
    }
    if el.children.is_empty() {
        if el.text.is_empty() {
            o.push_str("/>\n");
        } else {
            let _ = writeln!(o, ">{}</{}>", escape(&el.text), el.name);
        }
        return;
    }
    o.push_str(">\n");
    for c in &el.children {
        write_el(o, c, depth + 1);
    }
    let _ = writeln!(o, "{pad}</{}>", el.name);
}

/// The document as GB18030 bytes with its declaration.
pub fn to_bytes(root: &El) -> Vec<u8> {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"GB18030\"?>\n");
    write_el(&mut s, root, 0);
    // GB18030 maps every Unicode scalar value, so encoding never substitutes.
    GB18030.encode(&s).0.into_owned()
}

/// A document written piece by piece as GB18030 bytes, in the layout of [`to_bytes`], for
/// messages too large to build as a tree first (a province-scale return voucher): the
/// document exists once, as bytes. ASCII text is copied as is (GB18030 is ASCII-compatible);
/// only other text goes through the encoder, and parts that repeat can be encoded once
/// ([`Out::raw`]).
pub struct Out {
    bytes: Vec<u8>,
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

/// Text as GB18030 bytes (ASCII unchanged).
pub fn gb18030(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if s.is_ascii() {
        std::borrow::Cow::Borrowed(s.as_bytes())
    } else {
        GB18030.encode(s).0
    }
}

fn needs_escape(s: &str) -> bool {
    s.bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
}

impl Out {
    /// A document with its declaration.
    pub fn new() -> Out {
        Out::part(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>\n")
    }
    /// A part of a document (no declaration), to be copied into one with [`Out::raw`].
    pub fn fragment() -> Out {
        Out::part(b"")
    }
    fn part(start: &[u8]) -> Out {
        Out {
            bytes: start.to_vec(),
        }
    }
    fn pad(&mut self, depth: usize) {
        for _ in 0..depth {
            self.bytes.extend_from_slice(b"  ");
        }
    }
    fn text(&mut self, s: &str) {
        if needs_escape(s) {
            let e = escape(s);
            self.bytes.extend_from_slice(&gb18030(&e));
        } else {
            self.bytes.extend_from_slice(&gb18030(s));
        }
    }
    /// `<name k="v">` on a line of its own.
    pub fn open(&mut self, depth: usize, name: &str, attrs: &[(&str, &str)]) {
        self.pad(depth);
        self.bytes.push(b'<');
        self.bytes.extend_from_slice(name.as_bytes());
        for (k, v) in attrs {
            self.bytes.push(b' ');
            self.bytes.extend_from_slice(k.as_bytes());
            self.bytes.extend_from_slice(b"=\"");
            self.text(v);
            self.bytes.push(b'"');
        }
        self.bytes.extend_from_slice(b">\n");
    }
    pub fn close(&mut self, depth: usize, name: &str) {
        self.pad(depth);
        self.bytes.extend_from_slice(b"</");
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(b">\n");
    }
    /// A leaf, written as [`to_bytes`] writes it (`<name/>` when the text is empty).
    pub fn leaf(&mut self, depth: usize, name: &str, text: &str) {
        self.pad(depth);
        self.bytes.push(b'<');
        self.bytes.extend_from_slice(name.as_bytes());
        if text.is_empty() {
            self.bytes.extend_from_slice(b"/>\n");
        } else {
            self.bytes.push(b'>');
            self.text(text);
            self.bytes.extend_from_slice(b"</");
            self.bytes.extend_from_slice(name.as_bytes());
            self.bytes.extend_from_slice(b">\n");
        }
    }
    /// A leaf whose text is already escaped and encoded (see [`gb18030`]); never empty.
    pub fn leaf_encoded(&mut self, depth: usize, name: &str, text: &[u8]) {
        self.pad(depth);
        self.bytes.push(b'<');
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(b'>');
        self.bytes.extend_from_slice(text);
        self.bytes.extend_from_slice(b"</");
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(b">\n");
    }
    /// A (small) element tree.
    pub fn el(&mut self, el: &El, depth: usize) {
        let mut s = String::new();
        write_el(&mut s, el, depth);
        self.bytes.extend_from_slice(&gb18030(&s));
    }
    /// Bytes already GB18030-encoded (a part of this or another document).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }
    /// [`Out::raw`] at `depth`, then a newline.
    pub fn raw_line(&mut self, depth: usize, bytes: &[u8]) {
        self.pad(depth);
        self.bytes.extend_from_slice(bytes);
        self.bytes.push(b'\n');
    }
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The encoding a message's declaration names (see [`decode`]).
fn declared(bytes: &[u8]) -> Result<&'static encoding_rs::Encoding, String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    let declared = head
        .split("encoding=")
        .nth(1)
        .and_then(|r| r.trim_start_matches(['"', '\'']).split(['"', '\'']).next())
        .map(str::to_owned);
    match declared.as_deref() {
        None | Some("utf-8" | "utf8") => Ok(UTF_8),
        Some("gb18030" | "gbk" | "gb2312") => Ok(GB18030),
        Some(other) => Err(format!("不支持的字符集 {other} (unsupported encoding)")),
    }
}

/// Check that the bytes are valid in the declared encoding, without keeping the decoded text.
fn check_encoding(bytes: &[u8]) -> Result<(), String> {
    let mut dec = declared(bytes)?.new_decoder_without_bom_handling();
    let mut buf = String::with_capacity(64 * 1024);
    let mut src = bytes;
    loop {
        buf.clear();
        let (res, read) = dec.decode_to_string_without_replacement(src, &mut buf, true);
        src = &src[read..];
        match res {
            encoding_rs::DecoderResult::InputEmpty => return Ok(()),
            encoding_rs::DecoderResult::OutputFull => {}
            encoding_rs::DecoderResult::Malformed(..) => {
                return Err(
                    "报文字符编码错误 (malformed bytes for the declared encoding)".to_owned(),
                );
            }
        }
    }
}

/// The byte ranges of the children named `name` of a document's root element named `root`,
/// checking the whole document as [`parse`] does (encoding, well-formedness, no DOCTYPE, known
/// entities) without building its tree. GB18030 never uses the bytes of XML markup (`<`, `>`,
/// `&`, quotes) inside a multi-byte character, so the markup can be read on the raw bytes, and
/// a range is a well-formed part of the document in its own encoding.
pub fn children_ranges(
    bytes: &[u8],
    root: &str,
    name: &str,
) -> Result<Vec<std::ops::Range<usize>>, String> {
    check_encoding(bytes)?;
    let bad = |e: &dyn std::fmt::Display| format!("XML格式错误 (malformed XML): {e}");
    let mut r = Reader::from_reader(bytes);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut start: Option<usize> = None;
    let mut out = Vec::new();
    // The one root element, named `root`.
    let mut check_root = |tag: &[u8]| -> Result<(), String> {
        if seen_root {
            return Err(bad(&"多个根元素 (several root elements)"));
        }
        seen_root = true;
        if tag != root.as_bytes() {
            return Err(format!("应为{root}报文 (expected {root})"));
        }
        Ok(())
    };
    loop {
        let before = r.buffer_position() as usize;
        let ev = r.read_event().map_err(|e| bad(&e))?;
        match ev {
            Event::Start(e) => {
                if depth == 0 {
                    check_root(e.name().as_ref())?;
                } else if depth == 1 && e.name().as_ref() == name.as_bytes() {
                    start = Some(before);
                }
                for a in e.attributes() {
                    a.map_err(|e| bad(&e))?;
                }
                depth += 1;
            }
            Event::Empty(e) => {
                if depth == 0 {
                    check_root(e.name().as_ref())?;
                } else if depth == 1 && e.name().as_ref() == name.as_bytes() {
                    out.push(before..r.buffer_position() as usize);
                }
                for a in e.attributes() {
                    a.map_err(|e| bad(&e))?;
                }
            }
            Event::End(_) => {
                depth = depth.checked_sub(1).ok_or_else(|| bad(&"多余的结束标记"))?;
                if depth == 1
                    && let Some(s) = start.take()
                {
                    out.push(s..r.buffer_position() as usize);
                }
            }
            Event::GeneralRef(g) => {
                if g.resolve_char_ref().map_err(|e| bad(&e))?.is_none() {
                    let n = g.decode().map_err(|e| bad(&e))?;
                    if quick_xml::escape::resolve_predefined_entity(&n).is_none() {
                        return Err(bad(&format!("未知实体 &{n};")));
                    }
                }
            }
            Event::DocType(_) => return Err(bad(&"不接受DOCTYPE (DOCTYPE refused)")),
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad(&"元素未闭合 (unclosed element)"));
    }
    if !seen_root {
        return Err(bad(&"空报文 (empty document)"));
    }
    Ok(out)
}

/// Decode a message: the encoding its declaration names (GB18030, GBK, GB2312 or UTF-8;
/// UTF-8 when there is none). Malformed bytes are an error, never replaced.
pub fn decode(bytes: &[u8]) -> Result<String, String> {
    let enc = declared(bytes)?;
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|c| c.into_owned())
        .ok_or_else(|| "报文字符编码错误 (malformed bytes for the declared encoding)".to_owned())
}

/// Parse a message into its root element: [`parse_streaming`] with no list read apart (no
/// element has an empty name), so the whole tree is built, with the same checks.
pub fn parse(bytes: &[u8]) -> Result<El, String> {
    parse_streaming(bytes, "", "", |_, _| Ok(()))
}

/// Parse a message as [`parse`] does, except that each element named `item` whose parent is
/// named `list` is handed to `each` as soon as it is complete (with the elements still open
/// above it, the root first) and left out of the tree: a province-scale plan or voucher (some
/// 1.5 KB a detail as a tree) is read detail by detail, never held as a tree nor as decoded
/// text. The encoding is checked first, as by [`parse`]; the markup is read on the raw bytes
/// (GB18030 never uses the bytes of markup inside a multi-byte character, see
/// [`children_ranges`]) and each text decoded on its own. An error from `each` ends the parse
/// with that error.
pub fn parse_streaming(
    bytes: &[u8],
    list: &str,
    item: &str,
    mut each: impl FnMut(&[El], El) -> Result<(), String>,
) -> Result<El, String> {
    let enc = declared(bytes)?;
    check_encoding(bytes)?;
    let bad = |e: &dyn std::fmt::Display| format!("XML格式错误 (malformed XML): {e}");
    let text = |raw: &[u8]| -> Result<String, String> {
        enc.decode_without_bom_handling_and_without_replacement(raw)
            .map(std::borrow::Cow::into_owned)
            .ok_or_else(|| {
                "报文字符编码错误 (malformed bytes for the declared encoding)".to_owned()
            })
    };
    let element = |e: &quick_xml::events::BytesStart<'_>| -> Result<El, String> {
        let mut el = El::new(&String::from_utf8_lossy(e.name().as_ref()));
        for a in e.attributes() {
            let a = a.map_err(|e| bad(&e))?;
            let raw = text(&a.value)?;
            let value = quick_xml::escape::unescape(&raw)
                .map_err(|e| bad(&e))?
                .into_owned();
            el.attrs
                .push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), value));
        }
        Ok(el)
    };
    let mut r = Reader::from_reader(bytes);
    let mut stack: Vec<El> = Vec::new();
    let mut root: Option<El> = None;
    // Where a complete element goes: to `each`, to its parent, or it is the root.
    let mut place = |stack: &mut Vec<El>, root: &mut Option<El>, el: El| -> Result<(), String> {
        if el.name == item && stack.last().is_some_and(|p| p.name == list) {
            return each(stack, el);
        }
        match stack.last_mut() {
            Some(p) => p.children.push(el),
            None if root.is_none() => *root = Some(el),
            None => return Err(bad(&"多个根元素 (several root elements)")),
        }
        Ok(())
    };
    loop {
        match r.read_event().map_err(|e| bad(&e))? {
            Event::Start(e) => stack.push(element(&e)?),
            Event::Empty(e) => {
                let el = element(&e)?;
                place(&mut stack, &mut root, el)?;
            }
            Event::End(_) => {
                let mut el = stack.pop().ok_or_else(|| bad(&"多余的结束标记"))?;
                el.text = el.text.trim().to_owned();
                place(&mut stack, &mut root, el)?;
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text(&t)?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text(&t)?);
                }
            }
            Event::GeneralRef(g) => {
                let resolved = match g.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = g.decode().map_err(|e| bad(&e))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| bad(&format!("未知实体 &{name};")))?
                            .to_owned()
                    }
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err(bad(&"不接受DOCTYPE (DOCTYPE refused)")),
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad(&"元素未闭合 (unclosed element)"));
    }
    root.ok_or_else(|| bad(&"空报文 (empty document)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_gb18030_with_rare_characters() {
        let doc = El::new("MOF").with(
            El::new("VoucherBody")
                .attr("VoucherNo", "5201")
                .with(El::leaf("PayeeAcctName", "王𬌗 & <李> \"䶮\""))
                .with(El::leaf("Empty", "")),
        );
        let bytes = to_bytes(&doc);
        assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>"));
        // Not UTF-8: the CJK text is GB18030-encoded.
        assert!(std::str::from_utf8(&bytes).is_err());
        let back = parse(&bytes).unwrap();
        assert_eq!(back, doc);
        assert_eq!(
            back.child("VoucherBody").unwrap().get("PayeeAcctName"),
            "王𬌗 & <李> \"䶮\""
        );
    }

    #[test]
    fn streamed_details_are_the_tree_s_details() {
        let detail = |n: &str| {
            El::new("Detail")
                .with(El::leaf("LineId", n))
                .with(El::leaf("PayeeAcctName", "王𬌗 & <李>"))
        };
        let doc = El::new("DisbursementPlan")
            .attr("A", "䶮 &amp")
            .with(El::leaf("PlanNo", "P1"))
            .with(
                El::new("DetailList")
                    .with(detail("1"))
                    .with(El::new("Detail"))
                    .with(detail("2")),
            )
            .with(El::new("Other").with(El::new("Detail")));
        let bytes = to_bytes(&doc);
        let mut seen = Vec::new();
        let rest = parse_streaming(&bytes, "DetailList", "Detail", |open, d| {
            assert_eq!(open[0].get("PlanNo"), "P1", "the header is there before");
            seen.push(d);
            Ok(())
        })
        .unwrap();
        let full = parse(&bytes).unwrap();
        assert_eq!(seen, full.child("DetailList").unwrap().children);
        let mut expect = full.clone();
        expect.child_mut("DetailList").unwrap().children.clear();
        assert_eq!(rest, expect, "everything else as parse reads it");
        let err = parse_streaming(&bytes, "DetailList", "Detail", |_, _| Err("no".into()));
        assert_eq!(err, Err("no".to_owned()));
        for bad in [
            &b"<a><b></a>"[..],
            b"",
            b"<?xml version=\"1.0\" encoding=\"GB18030\"?><a>\x81</a>",
            b"<!DOCTYPE x [<!ENTITY e \"x\">]><a>&e;</a>",
            b"<a/><a/>",
        ] {
            assert!(
                parse_streaming(bad, "l", "i", |_, _| Ok(())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<?xml version=\"1.0\" encoding=\"EBCDIC\"?><a/>").is_err());
        assert!(parse(b"<?xml version=\"1.0\" encoding=\"GB18030\"?><a>\x81</a>").is_err());
        assert!(parse(b"<!DOCTYPE x [<!ENTITY e \"x\">]><a>&e;</a>").is_err());
    }

    #[test]
    fn children_are_found_without_a_tree_and_written_as_parts() {
        let body = |no: &str| {
            El::new("VoucherBody")
                .attr("VoucherNo", no)
                .with(El::new("Voucher").with(El::leaf("PayeeAcctName", "王𬌗 & 李")))
        };
        let doc = El::new("MOF")
            .with(El::leaf("VoucherCount", "2"))
            .with(body("A"))
            .with(El::new("VoucherBody"))
            .with(body("B"));
        let bytes = to_bytes(&doc);
        let ranges = children_ranges(&bytes, "MOF", "VoucherBody").unwrap();
        assert_eq!(ranges.len(), 3);
        let mut o = Out::new();
        o.open(0, "MOF", &[]);
        o.leaf(1, "VoucherCount", "2");
        for r in &ranges {
            o.raw_line(1, &bytes[r.clone()]);
        }
        o.close(0, "MOF");
        let relayed = o.finish();
        assert_eq!(relayed, bytes, "the same layout as to_bytes");
        assert_eq!(parse(&relayed).unwrap(), doc);
        assert!(children_ranges(&bytes, "Other", "VoucherBody").is_err());
        for bad in [
            &b"<MOF><VoucherBody></MOF>"[..],
            b"",
            b"<?xml version=\"1.0\" encoding=\"GB18030\"?><MOF>\x81</MOF>",
            b"<!DOCTYPE x [<!ENTITY e \"x\">]><MOF>&e;</MOF>",
            b"<MOF/><MOF/>",
        ] {
            assert!(
                children_ranges(bad, "MOF", "VoucherBody").is_err(),
                "{bad:?}"
            );
        }
    }
}
