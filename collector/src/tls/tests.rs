use super::*;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn files(d: &Path, client_auth: ClientAuth) -> TlsFiles {
    TlsFiles {
        cert_file: d.join("server.pem"),
        key_file: d.join("server-key.pem"),
        client_ca_file: (client_auth == ClientAuth::Require).then(|| d.join("ca.pem")),
        client_auth,
    }
}

fn init(d: &Path, hosts: &[&str], agents: &[&str]) {
    init::run(&init::Request {
        dir: d.to_path_buf(),
        hosts: hosts.iter().map(|s| s.to_string()).collect(),
        agents: agents.iter().map(|s| s.to_string()).collect(),
        days: 30,
    })
    .unwrap();
}

#[test]
fn a_made_pair_loads_with_its_names_and_expiry() {
    let d = dir();
    init(d.path(), &["collector.example", "127.0.0.1"], &[]);
    let tls = ServerTls::load(&files(d.path(), ClientAuth::None)).unwrap();
    assert_eq!(tls.names, ["collector.example", "127.0.0.1"]);
    let now = vedette_protocol::clock::now_ms() / 1000;
    assert!(
        (29..=30).contains(&tls.days_left(now).unwrap()),
        "{:?}",
        tls.days_left(now)
    );
    ServerTls::load(&files(d.path(), ClientAuth::Require)).expect("mutual TLS with the made CA");
}

#[test]
fn each_broken_file_is_named_with_its_key() {
    let d = dir();
    init(d.path(), &["a.example"], &["web-01"]);
    let other = dir();
    init(other.path(), &["b.example"], &[]);
    let p = d.path();

    let mut f = files(p, ClientAuth::None);
    f.key_file = other.path().join("server-key.pem");
    let e = ServerTls::load(&f).unwrap_err();
    assert_eq!(e.field, "key_file");
    assert!(
        e.message.contains("is not the key of the certificate in"),
        "{e}"
    );

    let mut f = files(p, ClientAuth::None);
    f.cert_file = p.join("missing.pem");
    let e = ServerTls::load(&f).unwrap_err();
    assert_eq!(e.field, "cert_file");
    assert!(
        e.message
            .starts_with(&format!("cannot read {}", p.join("missing.pem").display())),
        "{e}"
    );

    // A key where the certificate belongs, a certificate where the key belongs.
    let mut f = files(p, ClientAuth::None);
    f.cert_file = p.join("server-key.pem");
    let e = ServerTls::load(&f).unwrap_err();
    assert_eq!(e.field, "cert_file");
    assert!(e.message.contains("holds no certificate"), "{e}");
    let mut f = files(p, ClientAuth::None);
    f.key_file = p.join("server.pem");
    let e = ServerTls::load(&f).unwrap_err();
    assert_eq!(e.field, "key_file");
    assert!(e.message.contains("holds no private key"), "{e}");

    // A CA file with no certificate in it.
    std::fs::write(p.join("empty.pem"), "# nothing here\n").unwrap();
    let mut f = files(p, ClientAuth::Require);
    f.client_ca_file = Some(p.join("empty.pem"));
    let e = ServerTls::load(&f).unwrap_err();
    assert_eq!(e.field, "client_ca_file");
    assert!(e.message.contains("empty.pem holds no certificate"), "{e}");

    let mut f = files(p, ClientAuth::Require);
    f.client_ca_file = None;
    assert_eq!(ServerTls::load(&f).unwrap_err().field, "client_ca_file");
}

#[test]
fn init_reuses_its_ca_and_keeps_keys_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir();
    init(d.path(), &["c.example"], &["web-01"]);
    let ca = std::fs::read(d.path().join("ca.pem")).unwrap();
    init(d.path(), &[], &["web-02"]);
    assert_eq!(
        std::fs::read(d.path().join("ca.pem")).unwrap(),
        ca,
        "the CA is reused"
    );
    for (file, mode) in [
        ("ca-key.pem", 0o600),
        ("server-key.pem", 0o600),
        ("agents/web-01-key.pem", 0o600),
        ("agents/web-02-key.pem", 0o600),
        ("ca.pem", 0o644),
        ("server.pem", 0o644),
        ("agents/web-02.pem", 0o644),
    ] {
        let m = std::fs::metadata(d.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, mode, "{file}");
    }
    // Both agents' certificates chain to the one CA, with their name as DNS SAN.
    for a in ["web-01", "web-02"] {
        let certs = read_certs(&d.path().join(format!("agents/{a}.pem")), "x").unwrap();
        assert_eq!(dns_names(&certs[0]), [a]);
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            r.add(read_certs(&d.path().join("ca.pem"), "x").unwrap().remove(0))
                .unwrap();
            Arc::new(r)
        };
        let v = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .build()
            .unwrap();
        v.verify_client_cert(&certs[0], &[], rustls::pki_types::UnixTime::now())
            .unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    // Half a CA is refused, not silently replaced.
    std::fs::remove_file(d.path().join("ca-key.pem")).unwrap();
    let e = init::run(&init::Request {
        dir: d.path().to_path_buf(),
        hosts: vec![],
        agents: vec!["web-03".into()],
        days: 1,
    })
    .unwrap_err();
    assert!(e.contains("must both exist"), "{e}");
}

#[test]
fn init_refuses_names_that_are_not_names() {
    for bad in ["", "../etc/passwd", "a b", "web/01", ".hidden"] {
        let d = dir();
        let r = init::run(&init::Request {
            dir: d.path().to_path_buf(),
            hosts: vec![],
            agents: vec![bad.to_string()],
            days: 1,
        });
        assert!(r.is_err(), "{bad:?} was accepted");
        assert!(
            !d.path().join("ca.pem").exists(),
            "{bad:?}: nothing is written"
        );
    }
}
