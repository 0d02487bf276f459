use super::*;

#[test]
fn systemd_then_root_then_xdg_then_home() {
    let p = |s: &str| Some(Path::new(s).to_path_buf());
    let c = |sd: Option<&str>, uid, xdg: Option<&str>, home: Option<&str>| {
        choose(
            "vedette-agent",
            sd.map(Path::new),
            uid,
            xdg.map(Path::new),
            home.map(Path::new),
        )
    };
    assert_eq!(
        Some(c(Some("/var/lib/x:/var/lib/y"), Some(0), None, None)),
        p("/var/lib/x")
    );
    assert_eq!(
        Some(c(None, Some(0), Some("/s"), Some("/root"))),
        p("/var/lib/vedette-agent")
    );
    assert_eq!(
        Some(c(None, Some(1000), Some("/s"), Some("/home/u"))),
        p("/s/vedette-agent")
    );
    assert_eq!(
        Some(c(None, Some(1000), Some("relative"), Some("/home/u"))),
        p("/home/u/.local/state/vedette-agent"),
        "a relative XDG_STATE_HOME is ignored, as the spec says"
    );
    assert_eq!(
        Some(c(None, None, None, None)),
        Some(std::env::temp_dir().join("vedette-agent"))
    );
}

#[test]
fn the_effective_uid_is_the_second_field() {
    assert_eq!(effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
    assert_eq!(effective_uid("Name:\tx\n"), None);
    let here = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(effective_uid(&here).is_some());
}

#[test]
fn never_the_working_directory() {
    assert!(state_dir("vedette-collector").is_absolute());
}
