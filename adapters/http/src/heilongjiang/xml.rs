//! GB18030 XML for the budget-system messages: a small element tree written with
//! `quick_xml::Writer` and read with `quick_xml::Reader`. The simulators have their own
//! implementation of the same documented layout (`provinces/heilongjiang/docs/messages.md`).

use encoding_rs::{GB18030, UTF_8};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::reader::Reader;

/// An element: name, attributes, children, text (leaves only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    pub text: String,
}

impl Node {
    pub fn new(name: &str) -> Node {
        Node {
            name: name.into(),
            ..Node::default()
        }
    }
    /// Append a leaf `<name>text</name>`.
    pub fn leaf(mut self, name: &str, text: impl ToString) -> Node {
        self.children.push(Node {
            name: name.into(),
            text: text.to_string(),
            ..Node::default()
        });
        self
    }
    pub fn attr(mut self, k: &str, v: impl ToString) -> Node {
        self.attrs.push((k.into(), v.to_string()));
        self
    }
    pub fn child(mut self, c: Node) -> Node {
        self.children.push(c);
        self
    }
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn each<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// Text of a child leaf; `""` when absent.
    pub fn text_of(&self, name: &str) -> &str {
        self.find(name).map(|n| n.text.as_str()).unwrap_or("")
    }
}

fn write_node(w: &mut Writer<Vec<u8>>, n: &Node) -> std::io::Result<()> {
    let mut start = BytesStart::new(n.name.as_str());
    for (k, v) in &n.attrs {
        start.push_attribute((k.as_str(), v.as_str()));
    }
    if n.children.is_empty() && n.text.is_empty() {
        return w.write_event(Event::Empty(start));
    }
    w.write_event(Event::Start(start))?;
    if n.children.is_empty() {
        w.write_event(Event::Text(BytesText::new(&n.text)))?;
    }
    for c in &n.children {
        write_node(w, c)?;
    }
    w.write_event(Event::End(BytesEnd::new(n.name.as_str())))
}

/// Serialise with the GB18030 declaration, indented, and encode as GB18030.
pub fn encode(root: &Node) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("GB18030"), None)));
    let _ = write_node(&mut w, root);
    let mut utf8 = String::from_utf8_lossy(&w.into_inner()).into_owned();
    utf8.push('\n');
    GB18030.encode(&utf8).0.into_owned()
}

/// The encoding a message's declaration names (GB18030/GBK/GB2312, or UTF-8 when undeclared).
pub fn encoding_of(bytes: &[u8]) -> Result<&'static encoding_rs::Encoding, String> {
    let head: String = bytes
        .iter()
        .take(128)
        .map(|b| (*b as char).to_ascii_lowercase())
        .collect();
    Ok(match head.find("encoding=") {
        None => UTF_8,
        Some(i) => {
            let rest = &head[i + 9..];
            let name: String = rest
                .trim_start_matches(['"', '\''])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            match name.as_str() {
                "gb18030" | "gbk" | "gb2312" => GB18030,
                "utf-8" | "utf8" => UTF_8,
                other => return Err(format!("报文字符集{other}不受支持 (unsupported charset)")),
            }
        }
    })
}

const INVALID_BYTES: &str = "报文含非法字节 (bytes invalid for the declared charset)";

/// Decode bytes per their declaration (GB18030/GBK/GB2312, or UTF-8 when undeclared).
pub fn decode(bytes: &[u8]) -> Result<String, String> {
    encoding_of(bytes)?
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| s.into_owned())
        .ok_or_else(|| INVALID_BYTES.into())
}

/// Check that the bytes are valid in `enc` without keeping the decoded text (a
/// province-scale message is read as it streams, never decoded whole).
pub fn check_encoding(bytes: &[u8], enc: &'static encoding_rs::Encoding) -> Result<(), String> {
    let mut dec = enc.new_decoder_without_bom_handling();
    let mut buf = String::with_capacity(64 * 1024);
    let mut src = bytes;
    loop {
        buf.clear();
        let (res, read) = dec.decode_to_string_without_replacement(src, &mut buf, true);
        src = &src[read..];
        match res {
            encoding_rs::DecoderResult::InputEmpty => return Ok(()),
            encoding_rs::DecoderResult::OutputFull => {}
            encoding_rs::DecoderResult::Malformed(..) => return Err(INVALID_BYTES.into()),
        }
    }
}

/// A document written piece by piece, in the layout of [`encode`] (declaration, two-space
/// indentation), as GB18030 bytes: text is gathered in a small buffer and encoded as it fills,
/// so a province-scale plan or voucher exists once, as bytes, never as a tree.
pub struct Out {
    bytes: Vec<u8>,
    buf: String,
    depth: usize,
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

impl Out {
    const FLUSH: usize = 64 * 1024;

    pub fn new() -> Out {
        Out {
            bytes: Vec::new(),
            buf: String::from("<?xml version=\"1.0\" encoding=\"GB18030\"?>"),
            depth: 0,
        }
    }
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let (b, _, _) = GB18030.encode(&self.buf);
            self.bytes.extend_from_slice(&b);
            self.buf.clear();
        }
    }
    fn line(&mut self) {
        if self.buf.len() >= Self::FLUSH {
            self.flush();
        }
        self.buf.push('\n');
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
    }
    fn escaped(&mut self, s: &str) {
        self.buf.push_str(&quick_xml::escape::escape(s));
    }
    /// Open an element (attribute values escaped).
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.line();
        self.buf.push('<');
        self.buf.push_str(name);
        for (k, v) in attrs {
            self.buf.push(' ');
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            self.escaped(v);
            self.buf.push('"');
        }
        self.buf.push('>');
        self.depth += 1;
    }
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.line();
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }
    /// A leaf `<name>text</name>` (`<name/>` when the text is empty), as [`encode`] writes it.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.line();
        self.buf.push('<');
        self.buf.push_str(name);
        if text.is_empty() {
            self.buf.push_str("/>");
        } else {
            self.buf.push('>');
            self.escaped(text);
            self.buf.push_str("</");
            self.buf.push_str(name);
            self.buf.push('>');
        }
    }
    /// The document's bytes (with the final newline [`encode`] writes).
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push('\n');
        self.flush();
        self.bytes
    }
}

/// Parse a message.
pub fn parse(bytes: &[u8]) -> Result<Node, String> {
    let text = decode(bytes)?;
    let mut reader = Reader::from_str(&text);
    let decoder = reader.decoder();
    let mut open: Vec<Node> = Vec::new();
    let mut done: Option<Node> = None;
    let err = |m: String| format!("报文格式错误 (malformed XML): {m}");
    let node_of = |e: &BytesStart<'_>| -> Result<Node, String> {
        let mut n = Node::new(&String::from_utf8_lossy(e.name().as_ref()));
        for a in e.attributes() {
            let a = a.map_err(|x| err(x.to_string()))?;
            let v = a
                .decode_and_unescape_value(decoder)
                .map_err(|x| err(x.to_string()))?;
            n.attrs.push((
                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                v.into_owned(),
            ));
        }
        Ok(n)
    };
    let mut close = |n: Node, open: &mut Vec<Node>| -> Result<(), String> {
        match open.last_mut() {
            Some(p) => {
                p.children.push(n);
                Ok(())
            }
            None if done.is_none() => {
                done = Some(n);
                Ok(())
            }
            None => Err(err("多个根元素".into())),
        }
    };
    loop {
        match reader.read_event().map_err(|e| err(e.to_string()))? {
            Event::Start(e) => open.push(node_of(&e)?),
            Event::Empty(e) => {
                let n = node_of(&e)?;
                close(n, &mut open)?;
            }
            Event::End(_) => {
                let mut n = open.pop().ok_or_else(|| err("结束标记不匹配".into()))?;
                n.text = n.text.trim().to_owned();
                close(n, &mut open)?;
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| err(e.to_string()))?;
                if let Some(n) = open.last_mut() {
                    n.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| err(e.to_string()))?;
                if let Some(n) = open.last_mut() {
                    n.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref().map_err(|e| err(e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| err(e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| err(format!("未知实体&{name};")))?
                            .to_owned()
                    }
                };
                if let Some(n) = open.last_mut() {
                    n.text.push_str(&s);
                }
            }
            Event::DocType(_) => return Err(err("不接受DOCTYPE".into())),
            Event::Eof => break,
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(err("元素未闭合".into()));
    }
    done.ok_or_else(|| err("空报文".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb18030_round_trip_keeps_rare_characters_and_escapes() {
        let n = Node::new("DisbursementPlan")
            .attr("v", "a&b")
            .leaf("PayeeAcctName", "欧阳𬌗 <x> & 'y'")
            .leaf("Empty", "")
            .child(Node::new("DetailList").child(Node::new("Detail").leaf("LineId", 7)));
        let bytes = encode(&n);
        assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>"));
        assert!(std::str::from_utf8(&bytes).is_err(), "not GB18030");
        assert_eq!(parse(&bytes).unwrap(), n);
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [
            &b"<a><b></a>"[..],
            b"",
            b"<?xml version=\"1.0\" encoding=\"latin9\"?><a/>",
            b"<?xml version=\"1.0\" encoding=\"GB18030\"?><a>\x81\x20</a>",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
