//! Network interfaces: bytes and errors of each interface the filter lets through.

use sysinfo::Networks;

use super::{Out, Source};
use crate::sample::settings::Filter;

pub(super) struct Network {
    pub(super) networks: Networks,
    pub(super) interfaces: Filter,
}

impl Source for Network {
    fn name(&self) -> &'static str {
        "network"
    }
    fn sample(&mut self, out: &mut Out) {
        self.networks.refresh(true);
        let mut ifaces: Vec<_> = self.networks.list().iter().collect();
        ifaces.sort_by(|a, b| a.0.cmp(b.0));
        for (name, data) in ifaces {
            if !self.interfaces.allows(name) {
                continue;
            }
            let l = [("interface", name.as_str())];
            out.push(
                "network_receive_bytes_total",
                &l,
                data.total_received() as f64,
            );
            out.push(
                "network_transmit_bytes_total",
                &l,
                data.total_transmitted() as f64,
            );
            out.push(
                "network_errors_total",
                &[("interface", name), ("direction", "receive")],
                data.total_errors_on_received() as f64,
            );
            out.push(
                "network_errors_total",
                &[("interface", name), ("direction", "transmit")],
                data.total_errors_on_transmitted() as f64,
            );
        }
    }
}
