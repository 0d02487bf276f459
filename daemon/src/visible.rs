//! Text from the network shown to a person: agents, peers and Alertmanager
//! put strings in log fields, incident summaries and labels. A terminal acts
//! on some characters instead of showing them (C0/C1 controls and DEL: colour,
//! cursor moves, window titles, screen clears; Unicode's directional marks and
//! overrides reorder what is shown), so those are escaped visibly wherever
//! such text is printed: in logs (see `init_tracing`) and in the CLI.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// True for a character a terminal may act on instead of showing.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every hazard escaped visibly: `\n`, `\t`, `\x1b`, `\u{202e}`.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hazard) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let _ = Visible(&mut out).write_str(s);
    Cow::Owned(out)
}

/// A [`fmt::Write`] that escapes hazards on their way to `W`.
pub struct Visible<'a, W: fmt::Write + ?Sized>(pub &'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Visible<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(is_hazard) {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or('\0');
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\t' => self.0.write_str("\\t")?,
                '\r' => self.0.write_str("\\r")?,
                c if (c as u32) < 0x100 => write!(self.0, "\\x{:02x}", c as u32)?,
                c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests;
