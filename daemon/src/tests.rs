use super::*;

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn speaks_sd_notify_on_a_path_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let listener = UnixDatagram::bind(&path).unwrap();
    let n = Notifier::new(path.to_str(), Some("4000000"), None);
    assert!(n.is_active());
    assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
    n.ready();
    n.watchdog();
    n.status("3 checks\nrunning");
    n.reloading();
    n.stopping();
    assert_eq!(recv(&listener), "READY=1");
    assert_eq!(recv(&listener), "WATCHDOG=1");
    assert_eq!(recv(&listener), "STATUS=3 checks running");
    assert!(recv(&listener).starts_with("RELOADING=1\nMONOTONIC_USEC="));
    assert_eq!(recv(&listener), "STOPPING=1");
}

#[test]
fn abstract_sockets_and_absent_systemd() {
    let name = format!("vedette-test-{}", std::process::id());
    use std::os::linux::net::SocketAddrExt;
    let listener =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let n = Notifier::new(Some(&format!("@{name}")), None, None);
    n.ready();
    assert_eq!(recv(&listener), "READY=1");
    assert_eq!(n.watchdog_interval(), None);

    let off = Notifier::new(None, Some("1000000"), None);
    assert!(!off.is_active());
    assert_eq!(off.watchdog_interval(), None, "no socket, no pings");
    off.ready(); // a no-op, not an error
                 // A watchdog meant for another process is not ours.
    let other = Notifier::new(Some(&format!("@{name}")), Some("1000000"), Some("1"));
    assert_eq!(other.watchdog_interval(), None);
    let ours = Notifier::new(
        Some(&format!("@{name}")),
        Some("1000000"),
        Some(&std::process::id().to_string()),
    );
    assert_eq!(ours.watchdog_interval(), Some(Duration::from_millis(500)));
    assert!(!Notifier::new(Some("relative/path"), None, None).is_active());
}
