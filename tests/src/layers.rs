//! The layer rule, checked: a crate's `lib.rs` lists its modules in layers
//! under a `# Layers` heading, bottom first, and every module may use only
//! the modules listed before it. [`violations`] reads that list and every
//! module's code (comments, strings and `mod tests` left out) and names each
//! `crate::` path that points to a module listed after the one using it, and
//! each module the list forgets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules of `lib.rs`'s `# Layers` list, in order: the backquoted
/// names of its numbered items (`1. domain: `a`, `b``).
pub fn order(lib_rs: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in lib_rs.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with('#') {
            inside = doc == "# Layers";
            continue;
        }
        let numbered = doc
            .split_once(". ")
            .filter(|(n, _)| n.parse::<u32>().is_ok());
        if let (true, Some((_, item))) = (inside, numbered) {
            out.extend(item.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    out
}

/// The modules `lib.rs` declares (`mod x;` / `pub mod x;`).
pub fn declared(lib_rs: &str) -> BTreeSet<String> {
    lib_rs
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// `src` without comments, string and char literals, and `#[cfg(test)] mod
/// tests { … }` blocks: what is left is code.
pub fn code(src: &str) -> String {
    let without_tests = drop_test_modules(src);
    let b = without_tests.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &without_tests[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if let Some(n) = raw_string(rest) {
            i += n;
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if let Some(n) = char_literal(rest) {
            i += n;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a raw string literal at the start of `s` (`r"…"`, `r#"…"#`).
fn raw_string(s: &str) -> Option<usize> {
    let after_r = s.strip_prefix('r').or_else(|| s.strip_prefix("br"))?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    let body = after_r[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body.find(&close)?;
    Some(s.len() - body.len() + end + close.len())
}

/// The length of a char literal at the start of `s` (`'x'`, `'\n'`), not a lifetime.
fn char_literal(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('\'')?;
    let mut chars = rest.char_indices();
    let (_, c) = chars.next()?;
    let end = if c == '\\' {
        rest[1..].find('\'')? + 1
    } else {
        chars.next().filter(|(_, c)| *c == '\'')?.0
    };
    Some(1 + end + 1)
}

fn drop_test_modules(src: &str) -> String {
    let mut out = String::new();
    let mut lines = src.lines().peekable();
    while let Some(line) = lines.next() {
        let next = lines.peek().map(|l| l.trim());
        if line.trim() == "#[cfg(test)]" && next == Some("mod tests {") {
            let indent = &line[..line.len() - line.trim_start().len()];
            let close = format!("{indent}}}");
            for l in lines.by_ref() {
                if l == close {
                    break;
                }
            }
            continue;
        }
        if line.trim() == "#[cfg(test)]" && next == Some("mod tests;") {
            lines.next();
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level modules `code` names through `crate::` paths, including
/// grouped imports (`use crate::{a, b::c}`).
pub fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `vedette_crate::` or the like
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.insert(ident(item.trim()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out.remove("self");
    out
}

/// The files of module `name` under `src`: `name.rs` and everything under
/// `name/`, without the sibling `tests.rs` files.
pub fn files(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src.join(format!("{name}.rs"));
    if file.exists() {
        out.push(file);
    }
    let mut dirs = vec![src.join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && p.file_name().is_some_and(|f| f != "tests.rs")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every breach of the layer rule in the crate whose sources are in `src`.
pub fn violations(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let order = order(&lib);
    let mut out = Vec::new();
    if order.is_empty() {
        out.push(format!(
            "{}: no `# Layers` list",
            src.join("lib.rs").display()
        ));
    }
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    for m in declared(&lib).difference(&listed) {
        out.push(format!(
            "module `{m}` is declared in lib.rs but not in its layer list"
        ));
    }
    for m in listed.difference(&declared(&lib)) {
        out.push(format!(
            "`{m}` is in the layer list but lib.rs declares no such module"
        ));
    }
    for (rank, module) in order.iter().enumerate() {
        for file in files(src, module) {
            let text = std::fs::read_to_string(&file).expect("source");
            for used in uses(&code(&text)) {
                match order.iter().position(|m| *m == used) {
                    Some(r) if r > rank => out.push(format!(
                        "{}: `{module}` uses `crate::{used}`, which is listed after it (upward)",
                        file.display()
                    )),
                    _ => {}
                }
            }
        }
    }
    out
}
