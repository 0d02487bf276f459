//! Pressure stall information (`/proc/pressure/*`).

use super::{Out, Reader, Source};

/// Parses one `/proc/pressure/<resource>` file into `out`.
pub(super) fn parse_pressure(resource: &str, text: &str, out: &mut Out) {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = match words.next() {
            Some(k @ ("some" | "full")) => k,
            _ => continue,
        };
        for w in words {
            let Some((key, value)) = w.split_once('=') else {
                continue;
            };
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            match key {
                "avg10" | "avg60" | "avg300" => out.push(
                    &format!("pressure_{kind}_ratio"),
                    &[
                        ("resource", resource),
                        ("window", &format!("{}s", &key[3..])),
                    ],
                    v / 100.0,
                ),
                "total" => out.push(
                    &format!("pressure_{kind}_seconds_total"),
                    &[("resource", resource)],
                    v / 1e6,
                ),
                _ => {}
            }
        }
    }
}

#[derive(Default)]
pub(super) struct Pressure {
    reader: Reader,
}

impl Source for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }
    fn sample(&mut self, out: &mut Out) {
        for resource in ["cpu", "memory", "io"] {
            if let Some(text) = self.reader.read(format!("/proc/pressure/{resource}")) {
                parse_pressure(resource, text, out);
            }
        }
    }
}
