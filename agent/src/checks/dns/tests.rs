use super::*;

#[test]
fn resolv_conf() {
    let t = "# comment\nsearch example\nnameserver 10.1.2.3\nnameserver 10.0.0.1\n";
    assert_eq!(system_server(t), Some("10.1.2.3:53".parse().unwrap()));
    assert_eq!(
        system_server("nameserver ::1"),
        Some("[::1]:53".parse().unwrap())
    );
    assert_eq!(system_server("search x\n"), None);
}
