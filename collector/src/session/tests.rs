use super::*;

#[test]
fn a_session_verifies_until_it_expires_and_any_change_breaks_it() {
    let k = SessionKey::random();
    let v = k.issue("alice", 1_000);
    let s = k.verify(&v, 1_001).unwrap();
    assert_eq!(s.name, "alice");
    assert_eq!(k.verify(&v, 1_000 + LIFETIME_S), None, "expired");
    // Another key, a flipped character in each part, extra parts.
    assert_eq!(SessionKey::random().verify(&v, 1_001), None);
    let parts: Vec<&str> = v.split('.').collect();
    for i in 0..4 {
        let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        let c = if p[i].ends_with('0') { '1' } else { '0' };
        p[i].pop();
        p[i].push(c);
        assert_eq!(k.verify(&p.join("."), 1_001), None, "part {i}");
    }
    // A name swapped in with the MAC kept: refused.
    let forged = format!(
        "{}.{}.{}.{}",
        parts[0],
        parts[1],
        hex::encode("root"),
        parts[3]
    );
    assert_eq!(k.verify(&forged, 1_001), None);
    assert_eq!(k.verify(&format!("{v}.x"), 1_001), None);
    assert_eq!(k.verify("", 1_001), None);
    assert_eq!(k.verify(&"a".repeat(5000), 1_001), None);
}

#[test]
fn csrf_tokens_belong_to_their_session() {
    let k = SessionKey::random();
    let a = k.verify(&k.issue("alice", 0), 1).unwrap();
    let b = k.verify(&k.issue("alice", 0), 1).unwrap();
    let t = k.csrf(&a);
    assert!(k.csrf_ok(&a, &t));
    assert!(!k.csrf_ok(&b, &t), "another session of the same person");
    assert!(!k.csrf_ok(&a, ""));
    assert!(!k.csrf_ok(&a, "zz"));
}

#[test]
fn the_key_is_kept_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let k1 = SessionKey::load_or_create(d.path()).unwrap();
    let mode = std::fs::metadata(d.path().join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let k2 = SessionKey::load_or_create(d.path()).unwrap();
    let v = k1.issue("alice", 0);
    assert!(k2.verify(&v, 1).is_some(), "a restart keeps sessions");
    std::fs::write(d.path().join(KEY_FILE), b"short").unwrap();
    assert!(SessionKey::load_or_create(d.path()).is_err());
}

#[test]
fn the_cookie_is_found_among_others() {
    let mut h = axum::http::HeaderMap::new();
    h.append(
        "cookie",
        "a=1; vedette_session=abc.def; b=2".parse().unwrap(),
    );
    assert_eq!(cookie_value(&h), Some("abc.def"));
    assert!(set_cookie("v", true).contains("HttpOnly; SameSite=Strict"));
    assert!(set_cookie("v", true).ends_with("; Secure"));
    assert!(!set_cookie("v", false).contains("Secure"));
}
