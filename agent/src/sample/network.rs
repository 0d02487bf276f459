//! Network: per interface (`/proc/net/dev`, `/sys/class/net`) bytes,
//! packets, errors, drops, link state and speed; host-wide TCP
//! retransmissions and listen drops (`/proc/net/snmp`, `/proc/net/netstat`)
//! and connection tracking where the module is loaded.

use super::settings::Filter;
use super::{Out, Reader, Source};

/// Parses `/proc/net/dev` into `out`, for interfaces `filter` lets through.
/// After `name:` come 8 receive columns (bytes packets errs drop fifo frame
/// compressed multicast) and 8 transmit ones (bytes packets errs drop …).
pub(super) fn parse_net_dev(text: &str, filter: &Filter, out: &mut Out) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.contains('|') || !filter.allows(name) {
            continue;
        }
        let v: Vec<f64> = rest
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        let l = [("interface", name)];
        out.push("network_receive_bytes_total", &l, v[0]);
        out.push("network_receive_packets_total", &l, v[1]);
        out.push("network_receive_drop_total", &l, v[3]);
        out.push("network_transmit_bytes_total", &l, v[8]);
        out.push("network_transmit_packets_total", &l, v[9]);
        out.push("network_transmit_drop_total", &l, v[11]);
        for (direction, errors) in [("receive", v[2]), ("transmit", v[10])] {
            out.push(
                "network_errors_total",
                &[("interface", name), ("direction", direction)],
                errors,
            );
        }
        names.push(name.to_string());
    }
    names
}

/// The value under `field` of the `prefix` table in `/proc/net/snmp` or
/// `/proc/net/netstat` (a header line of names, then a line of values).
pub(super) fn snmp_value(text: &str, prefix: &str, field: &str) -> Option<f64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let header = lines.next()?;
    let values = lines.next()?;
    let i = header.split_whitespace().position(|h| h == field)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

pub(super) struct Network {
    reader: Reader,
    interfaces: Filter,
}

impl Network {
    pub(super) fn new(interfaces: Filter) -> Network {
        Network {
            reader: Reader::default(),
            interfaces,
        }
    }

    fn one_number(&mut self, path: &str) -> Option<f64> {
        self.reader.read(path)?.trim().parse().ok()
    }
}

impl Source for Network {
    fn name(&self) -> &'static str {
        "network"
    }
    fn sample(&mut self, out: &mut Out) {
        let names = match self.reader.read("/proc/net/dev") {
            Some(text) => parse_net_dev(text, &self.interfaces, out),
            None => Vec::new(),
        };
        for name in names {
            let l = [("interface", name.as_str())];
            // As node_exporter: up means the operational state is "up".
            if let Some(state) = self.reader.read(format!("/sys/class/net/{name}/operstate")) {
                out.push("network_up", &l, f64::from(u8::from(state.trim() == "up")));
            }
            // Mbit/s; unreadable or -1 on a link that is down or virtual.
            if let Some(mbps) = self.one_number(&format!("/sys/class/net/{name}/speed")) {
                if mbps > 0.0 {
                    out.push("network_speed_bytes", &l, mbps * 1e6 / 8.0);
                }
            }
        }
        if let Some(v) = self
            .reader
            .read("/proc/net/snmp")
            .and_then(|t| snmp_value(t, "Tcp:", "RetransSegs"))
        {
            out.push("tcp_retransmitted_segments_total", &[], v);
        }
        if let Some(v) = self
            .reader
            .read("/proc/net/netstat")
            .and_then(|t| snmp_value(t, "TcpExt:", "ListenDrops"))
        {
            out.push("tcp_listen_drops_total", &[], v);
        }
        if let Some(n) = self.one_number("/proc/sys/net/netfilter/nf_conntrack_count") {
            out.push("conntrack_entries", &[], n);
            if let Some(max) = self.one_number("/proc/sys/net/netfilter/nf_conntrack_max") {
                out.push("conntrack_limit", &[], max);
            }
        }
    }
}
