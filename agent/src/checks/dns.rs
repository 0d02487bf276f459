//! `dns` checks: one query over UDP to a chosen server (default: the first
//! `nameserver` of `/etc/resolv.conf`), and the answer's addresses compared
//! with `expect`.
//!
//! OK when the server answers and, if `expect` is given, every expected
//! address is in the answer. A truncated answer is judged on what it holds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rand::Rng;
use serde::Deserialize;
use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, PacketFlag, Question, CLASS, QCLASS, QTYPE, RCODE, TYPE};
use vedette_yaml::Diagnostics;

use super::Outcome;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    pub name: String,
    /// `ip` or `ip:port`; default the system resolver.
    pub server: Option<String>,
    /// `A` (default) or `AAAA`.
    #[serde(default = "default_record")]
    pub record: String,
    #[serde(default)]
    pub expect: Vec<IpAddr>,
}

fn default_record() -> String {
    "A".into()
}

impl DnsSpec {
    pub fn validate(&self, at: &str, diag: &mut Diagnostics) {
        if Name::new(&self.name).is_err() || self.name.is_empty() {
            diag.push(
                &format!("{at}.name"),
                format!("'{}' is not a DNS name", self.name),
            );
        }
        if let Some(s) = &self.server {
            if parse_server(s).is_none() {
                diag.push(
                    &format!("{at}.server"),
                    format!("'{s}' is not an IP address or ip:port"),
                );
            }
        }
        if qtype(&self.record).is_none() {
            diag.push(&format!("{at}.record"), "must be A or AAAA");
        }
    }
}

fn qtype(record: &str) -> Option<TYPE> {
    match record.to_ascii_uppercase().as_str() {
        "A" => Some(TYPE::A),
        "AAAA" => Some(TYPE::AAAA),
        _ => None,
    }
}

fn parse_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// The first `nameserver` in resolv.conf text.
pub fn system_server(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next().and_then(parse_server))
            .flatten()
    })
}

pub async fn run(spec: &DnsSpec) -> Outcome {
    let server = match &spec.server {
        Some(s) => parse_server(s),
        None => std::fs::read_to_string("/etc/resolv.conf")
            .ok()
            .and_then(|t| system_server(&t)),
    };
    let Some(server) = server else {
        return Outcome::new(
            vedette_protocol::Status::Unknown,
            "no DNS server: set `server` or a nameserver in /etc/resolv.conf",
        );
    };
    let Some(qt) = qtype(&spec.record) else {
        return Outcome::new(vedette_protocol::Status::Unknown, "unsupported record type");
    };
    let id: u16 = rand::rng().random();
    let mut query = Packet::new_query(id);
    query.set_flags(PacketFlag::RECURSION_DESIRED);
    let Ok(name) = Name::new(&spec.name) else {
        return Outcome::new(vedette_protocol::Status::Unknown, "invalid name");
    };
    query.questions.push(Question::new(
        name,
        QTYPE::TYPE(qt),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    let bytes = match query.build_bytes_vec() {
        Ok(b) => b,
        Err(e) => {
            return Outcome::new(
                vedette_protocol::Status::Unknown,
                format!("cannot build the query: {e}"),
            )
        }
    };
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = match tokio::net::UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome::new(
                vedette_protocol::Status::Unknown,
                format!("cannot open a UDP socket: {e}"),
            )
        }
    };
    if let Err(e) = sock.connect(server).await {
        return Outcome::critical(format!("cannot reach {server}: {e}"));
    }
    if let Err(e) = sock.send(&bytes).await {
        return Outcome::critical(format!("send to {server} failed: {e}"));
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Outcome::critical(format!("{server} refused (nothing listening)"))
            }
            Err(e) => return Outcome::critical(format!("receive from {server} failed: {e}")),
        };
        let Ok(answer) = Packet::parse(&buf[..n]) else {
            continue; // not a DNS answer: keep waiting until the timeout
        };
        if answer.id() != id {
            continue;
        }
        return judge(spec, &answer);
    }
}

fn judge(spec: &DnsSpec, answer: &Packet<'_>) -> Outcome {
    match answer.rcode() {
        RCODE::NoError => {}
        RCODE::NameError => {
            return Outcome::critical(format!("{} does not exist (NXDOMAIN)", spec.name))
        }
        other => return Outcome::critical(format!("server answered {other:?}")),
    }
    let addrs: Vec<IpAddr> = answer
        .answers
        .iter()
        .filter_map(|rr| match &rr.rdata {
            RData::A(a) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
            RData::AAAA(a) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
            _ => None,
        })
        .collect();
    let list = addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if addrs.is_empty() {
        return Outcome::critical(format!(
            "no {} record for {}",
            spec.record.to_ascii_uppercase(),
            spec.name
        ));
    }
    let missing: Vec<_> = spec.expect.iter().filter(|e| !addrs.contains(e)).collect();
    if missing.is_empty() {
        Outcome::ok(format!("resolved {list}"))
    } else {
        Outcome::critical(format!("resolved {list}"))
    }
}

#[cfg(test)]
mod tests;
