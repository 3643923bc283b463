//! A small element tree over quick-xml (the simulator's own reader and writer).

use quick_xml::events::Event;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn text_of(&self, name: &str) -> &str {
        self.child(name).map(|c| c.text.as_str()).unwrap_or("")
    }
}

pub fn parse(s: &str) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_str(s);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    let name_of = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => stack.push(Node {
                name: name_of(e.name().as_ref()),
                ..Node::default()
            }),
            Ok(Event::Empty(e)) => {
                let n = Node {
                    name: name_of(e.name().as_ref()),
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Ok(Event::End(_)) => {
                let mut n = stack.pop().ok_or("unbalanced end tag")?;
                n.text = n.text.trim().to_owned();
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Ok(Event::Text(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let v = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| e.to_string())?
                    .into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&v);
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(e.to_string()),
            Ok(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("unclosed element".into());
    }
    root.ok_or_else(|| "empty document".into())
}

/// `<?xml ...?><MOF><Receipt>...</Receipt></MOF>` with the given leaves.
pub fn receipt(leaves: &[(&str, &str)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"GB18030\"?>\n<MOF>\n  <Receipt>\n");
    for (k, v) in leaves {
        s.push_str(&format!(
            "    <{k}>{}</{k}>\n",
            quick_xml::escape::escape(*v)
        ));
    }
    s.push_str("  </Receipt>\n</MOF>\n");
    s
}
