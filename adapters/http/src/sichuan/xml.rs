//! A small element tree over quick-xml, enough for the voucher and receipt messages.

use quick_xml::events::Event;

/// An element: name, text content (entities resolved, surrounding whitespace trimmed) and
/// child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    /// The text of the first child named `name` (empty when absent).
    pub fn text_of(&self, name: &str) -> &str {
        self.child(name).map(|c| c.text.as_str()).unwrap_or("")
    }
}

/// Parse a document into its root element.
pub fn parse(s: &str) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_str(s);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => stack.push(Node {
                name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                ..Node::default()
            }),
            Ok(Event::Empty(e)) => {
                let n = Node {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Ok(Event::End(_)) => {
                let mut n = stack.pop().ok_or("多余的结束标签 (unbalanced end tag)")?;
                n.text = n.text.trim().to_owned();
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Ok(Event::Text(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(&t.decode().map_err(|e| format!("文本无法解码: {e}"))?);
                }
            }
            Ok(Event::CData(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(&t.decode().map_err(|e| format!("文本无法解码: {e}"))?);
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| format!("实体无法解码: {e}"))?;
                let resolved = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| format!("未知实体 &{name}; ({e})"))?
                    .into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("XML格式错误 (malformed XML): {e}")),
            Ok(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("XML不完整：元素未闭合 (truncated XML: unclosed element)".into());
    }
    root.ok_or_else(|| "XML为空 (empty document)".into())
}

/// Writes an indented document.
pub struct Out {
    buf: String,
    depth: usize,
}

impl Out {
    /// A document with a GB18030 XML declaration.
    pub fn new() -> Out {
        Out {
            buf: "<?xml version=\"1.0\" encoding=\"GB18030\"?>\n".into(),
            depth: 0,
        }
    }
    pub fn open(&mut self, name: &str) {
        self.indent();
        self.buf.push_str(&format!("<{name}>\n"));
        self.depth += 1;
    }
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.buf.push_str(&format!("</{name}>\n"));
    }
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        self.buf.push_str(&format!(
            "<{name}>{}</{name}>\n",
            quick_xml::escape::escape(text)
        ));
    }
    fn indent(&mut self) {
        self.buf.push_str(&"  ".repeat(self.depth));
    }
    pub fn finish(self) -> String {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_round_trip_with_entities() {
        let mut o = Out::new();
        o.open("MOF");
        o.leaf("A", "x & <y> 𬌗");
        o.leaf("B", "");
        o.close("MOF");
        let n = parse(&o.finish()).unwrap();
        assert_eq!(n.name, "MOF");
        assert_eq!(n.text_of("A"), "x & <y> 𬌗");
        assert_eq!(n.text_of("B"), "");
        assert!(parse("<MOF><A>1</A>").is_err());
        assert!(parse("").is_err());
    }
}
