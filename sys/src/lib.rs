//! The kernel calls vedette needs that neither `nix` nor `rustix` wraps,
//! each behind a safe function. The rest of the workspace forbids `unsafe`;
//! every `unsafe` block of the project is in this file.

/// The kernel clock's discipline state, as `adjtimex(2)` reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockState {
    /// The NTP daemon's current offset estimate, in seconds.
    pub offset_s: f64,
    /// Whether the kernel considers the clock synchronised (`adjtimex`
    /// did not return `TIME_ERROR`, so `STA_UNSYNC` is clear).
    pub synchronised: bool,
}

/// Reads the kernel clock's state without changing it (`modes = 0`), as
/// node_exporter's timex collector does. None where the call fails (a
/// seccomp filter, a non-Linux kernel).
#[cfg(target_os = "linux")]
pub fn clock_state() -> Option<ClockState> {
    // SAFETY: `libc::timex` holds only integers and a `timeval`, for which
    // all-zero bits are valid; zero `modes` is the read-only query.
    #[allow(unsafe_code)]
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed `timex` for the call's
    // duration; with `modes == 0` the kernel only writes into it.
    #[allow(unsafe_code)]
    let status = unsafe { libc::adjtimex(&mut tx) };
    if status < 0 {
        return None;
    }
    let per_second = if tx.status & libc::STA_NANO != 0 {
        1e9
    } else {
        1e6
    };
    Some(ClockState {
        offset_s: tx.offset as f64 / per_second,
        synchronised: status != libc::TIME_ERROR,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn clock_state() -> Option<ClockState> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_hosts_clock_as_a_small_offset() {
        let s = super::clock_state().expect("adjtimex answers on Linux");
        // A read-only query: the offset is whatever NTP says, bounded by
        // the kernel's MAXPHASE (0.5 s).
        assert!(s.offset_s.abs() <= 0.5, "{s:?}");
    }
}
