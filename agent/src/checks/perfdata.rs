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
mod tests {
    use super::*;

    fn p(label: &str, value: f64) -> Perf {
        Perf {
            label: label.into(),
            value,
        }
    }

    #[test]
    fn perfdata_table() {
        let cases: &[(&str, Vec<Perf>)] = &[
            ("", vec![]),
            ("load1=0.5;5;10;0", vec![p("load1", 0.5)]),
            (
                "load1=0.150;5.000;10.000;0; load5=0.200;4.000;6.000;0;",
                vec![p("load1", 0.15), p("load5", 0.2)],
            ),
            ("time=12ms;;;0", vec![p("time", 0.012)]),
            ("time=250us", vec![p("time", 0.00025)]),
            ("time=1.5s;2;3", vec![p("time", 1.5)]),
            ("used=42%;80;90;0;100", vec![p("used", 0.42)]),
            ("size=2KB", vec![p("size", 2048.0)]),
            ("/=1024MB;2000;3000;0;4000", vec![p("/", 1_073_741_824.0)]),
            ("size=1GiB", vec![p("size", 1_073_741_824.0)]),
            ("size=3B", vec![p("size", 3.0)]),
            ("bytes=1TB", vec![p("bytes", 1_099_511_627_776.0)]),
            ("packets=123456c", vec![p("packets", 123_456.0)]),
            ("'with space'=1", vec![p("with space", 1.0)]),
            ("'it''s'=2", vec![p("it's", 2.0)]),
            ("undetermined=U;1;2", vec![]),
            ("neg=-3.5", vec![p("neg", -3.5)]),
            ("exp=1e3", vec![p("exp", 1000.0)]),
            ("comma=0,5", vec![p("comma", 0.5)]),
            ("weird=7furlongs", vec![p("weird", 7.0)]),
            // Garbage between good values is skipped, not fatal.
            (
                "a=1 garbage b==2 =3 c=x d=4",
                vec![p("a", 1.0), p("d", 4.0)],
            ),
            (
                "  spaced=1\t\ttabbed=2  ",
                vec![p("spaced", 1.0), p("tabbed", 2.0)],
            ),
            ("inf=inf nan=NaN", vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_perfdata(input), want, "input {input:?}");
        }
    }

    #[test]
    fn output_table() {
        let cases: &[(&str, &str, Vec<Perf>)] = &[
            ("", "", vec![]),
            ("OK - all good", "OK - all good", vec![]),
            (
                "LOAD OK - total load average: 0.15, 0.20, 0.18|load1=0.150;5.000;10.000;0;\n",
                "LOAD OK - total load average: 0.15, 0.20, 0.18",
                vec![p("load1", 0.15)],
            ),
            (
                "DISK OK | /=10MB;;;0;100\nlong text line 1\nline 2 | /boot=1MB\n/home=2MB\n",
                "DISK OK",
                vec![
                    p("/", 10.0 * 1048576.0),
                    p("/boot", 1048576.0),
                    p("/home", 2.0 * 1048576.0),
                ],
            ),
            (
                "no perf on first line\nbut long text | x=1",
                "no perf on first line",
                vec![p("x", 1.0)],
            ),
            ("CRITICAL: broken |", "CRITICAL: broken", vec![]),
        ];
        for (input, msg, want) in cases {
            let (m, perf) = parse_output(input);
            assert_eq!(&m, msg, "input {input:?}");
            assert_eq!(&perf, want, "input {input:?}");
        }
    }
}
