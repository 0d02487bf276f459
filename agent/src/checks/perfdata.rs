//! Nagios plugin output: the first line's text is the message, and
//! performance data (`'label'=value[UOM];warn;crit;min;max`, after the first
//! `|` of the first line and of the long text) becomes values in base units.
//!
//! Units follow the Nagios plugin guidelines: `s`, `ms`, `us` → seconds;
//! `%` → a ratio (0–1, like every `_ratio` metric); `B`, `KB`, `MB`, `GB`,
//! `TB` (and the `KiB`… spellings) → bytes, in powers of 1024 as the
//! monitoring-plugins use them; `c` (a counter) and no unit → the number as
//! is. An unknown unit keeps the number as is. A value of `U` (undetermined)
//! and anything unparsable are skipped, never guessed.

/// One performance value, converted to base units.
#[derive(Debug, Clone, PartialEq)]
pub struct Perf {
    pub label: String,
    pub value: f64,
}

/// Splits plugin output into its message (the first line's text) and its
/// performance data.
pub fn parse_output(output: &str) -> (String, Vec<Perf>) {
    let (first, rest) = output.split_once('\n').unwrap_or((output, ""));
    let (text, mut perf_text) = match first.split_once('|') {
        Some((t, p)) => (t.trim(), p.to_string()),
        None => (first.trim(), String::new()),
    };
    // Long text may carry more performance data after its own `|`.
    if let Some((_, more)) = rest.split_once('|') {
        perf_text.push(' ');
        perf_text.push_str(more);
    }
    (text.to_string(), parse_perfdata(&perf_text))
}

/// Parses a performance data string.
pub fn parse_perfdata(s: &str) -> Vec<Perf> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        // Label: quoted ('' is a literal quote) or up to '='.
        let mut label = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                        label.push('\'');
                    } else {
                        break;
                    }
                } else {
                    label.push(c);
                }
            }
            // Anything between the closing quote and '=' is noise.
            for c in chars.by_ref() {
                if c == '=' || c.is_whitespace() {
                    if c.is_whitespace() {
                        label.clear();
                    }
                    break;
                }
            }
            if label.is_empty() {
                continue;
            }
        } else {
            let mut saw_eq = false;
            for c in chars.by_ref() {
                if c == '=' {
                    saw_eq = true;
                    break;
                }
                if c.is_whitespace() {
                    break;
                }
                label.push(c);
            }
            if !saw_eq || label.is_empty() {
                continue;
            }
        }
        let mut field = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            field.push(c);
            chars.next();
        }
        let value_uom = field.split(';').next().unwrap_or_default();
        if let Some(value) = parse_value(value_uom) {
            out.push(Perf { label, value });
        }
    }
    out
}

/// `12.5ms` → 0.0125; `U`, empty or garbage → None.
fn parse_value(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(s.len());
    // An exponent's 'e' followed by nothing numeric belongs to no unit we know;
    // let f64 parsing decide.
    let (num, uom) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    // Some plugins print the locale's decimal comma.
    let value: f64 = num.replace(',', ".").parse().ok()?;
    let factor = match uom.to_ascii_lowercase().as_str() {
        "" | "c" | "s" | "b" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "%" => 0.01,
        "kb" | "kib" => 1024.0,
        "mb" | "mib" => 1024.0 * 1024.0,
        "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    let v = value * factor;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests;
