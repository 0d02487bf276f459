//! YAML configuration loading shared by `vedette-agent` and `vedette-collector`,
//! with diagnostics an operator can jump to: `FILE:LINE:COL: message`.
//!
//! Loading is two passes over the same text:
//! 1. [`parse`] deserializes into the caller's raw serde type (which should use
//!    `deny_unknown_fields`); a syntax or type error stops here, located by
//!    serde_yaml.
//! 2. The caller validates the raw value into real types, pushing every problem
//!    into [`Diagnostics`] by its path (`rules[2].for`); [`Positions`], built from
//!    yaml-rust2's marked events, turns each path into a line and column, so
//!    every semantic error is located too and all of them are reported at once.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One located problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Lower-case, names the key and the fix.
    pub message: String,
}

/// Every problem found in one file. `Display` prints one `FILE:LINE:COL: message`
/// line per problem, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as the user gave it (or `<embedded>`).
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.file, d.line, d.col, d.message)?;
        }
        Ok(())
    }
}

/// Where each path in a document starts. Paths look like `listen`,
/// `rules[2]`, `rules[2].for`, `agents[0].hosts[1]`.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    at: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Indexes every key and sequence element of `text`. Text that does not
    /// parse yields an empty index (the serde pass reports the syntax error).
    pub fn index(text: &str) -> Positions {
        let mut rx = Indexer::default();
        let mut parser = Parser::new_from_str(text);
        // A scan error leaves what was indexed so far; serde reports the error.
        let _ = parser.load(&mut rx, false);
        Positions { at: rx.at }
    }

    /// The line and column of `path`, or of its nearest indexed ancestor, or 1:1.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(&pos) = self.at.get(p) {
                return pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

#[derive(Default)]
struct Indexer {
    at: HashMap<String, (usize, usize)>,
    stack: Vec<Frame>,
}

enum Frame {
    /// `key` is the key awaiting its value, if any.
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

impl Indexer {
    /// The path of the node about to start, or `None` if it is a mapping key.
    fn next_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map { path, key: Some(k) }) => Some(if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            }),
            Some(Frame::Seq { path, index }) => Some(format!("{path}[{index}]")),
        }
    }

    /// A value node has ended: the parent moves on to its next key or element.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        // Markers are 0-based in columns; lines start at 1.
        self.at
            .entry(path.to_string())
            .or_insert((mark.line().max(1), mark.col() + 1));
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => match self.next_path() {
                None => {
                    // A mapping key: its position is where the entry starts.
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        let map = path.clone();
                        let full = if path.is_empty() {
                            value.clone()
                        } else {
                            format!("{path}.{value}")
                        };
                        *key = Some(value);
                        // A block mapping's own start is marked at its first ':',
                        // so the mapping is placed at its first key instead.
                        self.record(&map, mark);
                        self.record(&full, mark);
                    }
                }
                Some(path) => {
                    self.record(&path, mark);
                    self.value_done();
                }
            },
            Event::Alias(_) => {
                if let Some(path) = self.next_path() {
                    self.record(&path, mark);
                }
                self.value_done();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // Complex keys are not used by vedette configs; index them as "?".
                let path = self.next_path().unwrap_or_else(|| "?".into());
                let frame = match ev {
                    Event::MappingStart(..) => Frame::Map { path, key: None },
                    _ => {
                        self.record(&path, mark);
                        Frame::Seq { path, index: 0 }
                    }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map { path, .. }) = self.stack.pop() {
                    // An empty mapping (`{}`) had no key to place it by.
                    self.record(&path, mark);
                }
                self.value_done();
            }
            _ => {}
        }
    }
}

/// Collects semantic problems by path while a raw config is validated.
#[derive(Debug)]
pub struct Diagnostics {
    positions: Positions,
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Starts an empty list for `text`.
    pub fn new(text: &str) -> Diagnostics {
        Diagnostics {
            positions: Positions::index(text),
            list: Vec::new(),
        }
    }

    /// Records a problem at `path`; the message should start with the path's
    /// meaning, e.g. `rules[2].for: must be more than 0`.
    pub fn push(&mut self, path: &str, message: impl fmt::Display) {
        let (line, col) = self.positions.locate(path);
        let message = if path.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        };
        self.list.push(Diagnostic { line, col, message });
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok(value)` when nothing was pushed, else every problem in file order.
    pub fn finish<T>(mut self, file: &str, value: T) -> Result<T, ConfigError> {
        if self.list.is_empty() {
            return Ok(value);
        }
        self.list.sort_by_key(|d| (d.line, d.col));
        Err(ConfigError {
            file: file.to_string(),
            diagnostics: self.list,
        })
    }
}

/// Deserializes `text` into `T`. An empty document (or one with only comments)
/// is read as an empty mapping, so every key takes its default.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---");
    let text = if blank { "{}" } else { text };
    serde_yaml::from_str(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        ConfigError {
            file: file.to_string(),
            diagnostics: vec![Diagnostic {
                line,
                col,
                message: strip_location(&e.to_string()),
            }],
        }
    })
}

/// Reads a config file; an unreadable file is a located error on line 1.
/// Returns the file name as given (for diagnostics) and the text.
pub fn read(path: &std::path::Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(e) => Err(ConfigError {
            diagnostics: vec![Diagnostic {
                line: 1,
                col: 1,
                message: format!("cannot read config: {e}"),
            }],
            file,
        }),
    }
}

/// serde_yaml appends " at line L column C"; the diagnostic already says where.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests;
