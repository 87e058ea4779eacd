//! Maps key paths (`models[0].d_model`) to line and column in a YAML source, so that errors found
//! after deserialization (unknown parameter, bad value in one sweep combination) still point at
//! the place in the file. serde gives the path; a second, marker-keeping parse gives the position.
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

#[derive(Debug, Default, Clone)]
pub struct Locator {
    positions: HashMap<String, (usize, usize)>,
    /// Keys written twice in one map (YAML forbids it; serde maps would keep the last silently).
    duplicates: Vec<(String, (usize, usize))>,
}

enum Frame {
    Map { path: String, pending_key: Option<String>, seen_key: bool },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, (usize, usize)>,
    duplicates: Vec<(String, (usize, usize))>,
}

fn pos(mark: &Marker) -> (usize, usize) {
    (mark.line(), mark.col() + 1)
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// Path of the node starting now, or None when the node is a mapping key.
    fn node_path(&mut self, key_text: Option<&str>, mark: &Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                self.positions.entry(p.clone()).or_insert(pos(mark));
                Some(p)
            }
            Some(Frame::Map { path, pending_key, seen_key }) => match pending_key.take() {
                Some(key) => Some(join(path, &key)),
                None => {
                    // A block map's start marker lies past its first key; its first key is where
                    // a reader looks for it.
                    if !*seen_key {
                        *seen_key = true;
                        self.positions.insert(path.clone(), pos(mark));
                    }
                    let key = key_text.unwrap_or("?").to_string();
                    let key_path = join(path, &key);
                    if self.positions.contains_key(&key_path) {
                        self.duplicates.push((key_path.clone(), pos(mark)));
                    }
                    self.positions.entry(key_path).or_insert(pos(mark));
                    *pending_key = Some(key);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                self.node_path(Some(&text), &mark);
            }
            Event::Alias(_) => {
                self.node_path(None, &mark);
            }
            Event::MappingStart(..) => {
                let path = self.node_path(None, &mark).unwrap_or_default();
                self.stack.push(Frame::Map { path, pending_key: None, seen_key: false });
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(None, &mark).unwrap_or_default();
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Locator {
    /// Parses `source`; on a syntax error the locator is simply empty (serde reports the error).
    pub fn new(source: &str) -> Self {
        let mut builder = Builder::default();
        let _ = Parser::new_from_str(source).load(&mut builder, false);
        Locator { positions: builder.positions, duplicates: builder.duplicates }
    }

    /// The first key written twice in the same map: its path and the second position.
    pub fn first_duplicate(&self) -> Option<&(String, (usize, usize))> {
        self.duplicates.first()
    }

    /// Line and column of the key (for map entries) or element (for list items) at `path`;
    /// falls back to the closest enclosing node that is known.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path.to_string();
        loop {
            if let Some(found) = self.positions.get(&p) {
                return Some(*found);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items() {
        let src = "name: x\nmodels:\n  - arch: lstm\n    d_model: [64, 128]\n  - arch: gru\n";
        let loc = Locator::new(src);
        assert_eq!(loc.find("name"), Some((1, 1)));
        assert_eq!(loc.find("models[0].d_model"), Some((4, 5)));
        assert_eq!(loc.find("models[1].arch"), Some((5, 5)));
        assert_eq!(loc.find("models[0].d_model[1]"), Some((4, 19)));
        // unknown path falls back to the enclosing entry
        assert_eq!(loc.find("models[1].nope"), Some((5, 5)));
    }
}
