use super::*;

#[test]
fn states() {
    let cases = [
        (
            "LoadState=loaded\nActiveState=active\nSubState=running\n",
            Status::Ok,
            "x.service active (running)",
        ),
        (
            "LoadState=loaded\nActiveState=failed\nSubState=failed\n",
            Status::Critical,
            "x.service failed (failed)",
        ),
        (
            "LoadState=loaded\nActiveState=inactive\nSubState=dead\n",
            Status::Critical,
            "x.service inactive (dead)",
        ),
        (
            "LoadState=loaded\nActiveState=activating\nSubState=start\n",
            Status::Warning,
            "x.service activating (start)",
        ),
        (
            "LoadState=not-found\nActiveState=inactive\nSubState=dead\n",
            Status::Critical,
            "x.service not found",
        ),
        (
            "",
            Status::Unknown,
            "systemctl said nothing about x.service",
        ),
    ];
    for (show, status, msg) in cases {
        let o = judge("x.service", show);
        assert_eq!((o.status, o.message.as_str()), (status, msg), "{show:?}");
    }
}
