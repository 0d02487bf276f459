use super::*;

fn p(label: &str, value: f64) -> Perf {
    Perf {
        label: label.into(),
        value,
    }
}

#[test]
fn perfdata_table() {
    let cases: &[(&str, Vec<Perf>)] = &[
        ("", vec![]),
        ("load1=0.5;5;10;0", vec![p("load1", 0.5)]),
        (
            "load1=0.150;5.000;10.000;0; load5=0.200;4.000;6.000;0;",
            vec![p("load1", 0.15), p("load5", 0.2)],
        ),
        ("time=12ms;;;0", vec![p("time", 0.012)]),
        ("time=250us", vec![p("time", 0.00025)]),
        ("time=1.5s;2;3", vec![p("time", 1.5)]),
        ("used=42%;80;90;0;100", vec![p("used", 0.42)]),
        ("size=2KB", vec![p("size", 2048.0)]),
        ("/=1024MB;2000;3000;0;4000", vec![p("/", 1_073_741_824.0)]),
        ("size=1GiB", vec![p("size", 1_073_741_824.0)]),
        ("size=3B", vec![p("size", 3.0)]),
        ("bytes=1TB", vec![p("bytes", 1_099_511_627_776.0)]),
        ("packets=123456c", vec![p("packets", 123_456.0)]),
        ("'with space'=1", vec![p("with space", 1.0)]),
        ("'it''s'=2", vec![p("it's", 2.0)]),
        ("undetermined=U;1;2", vec![]),
        ("neg=-3.5", vec![p("neg", -3.5)]),
        ("exp=1e3", vec![p("exp", 1000.0)]),
        ("comma=0,5", vec![p("comma", 0.5)]),
        ("weird=7furlongs", vec![p("weird", 7.0)]),
        // Garbage between good values is skipped, not fatal.
        (
            "a=1 garbage b==2 =3 c=x d=4",
            vec![p("a", 1.0), p("d", 4.0)],
        ),
        (
            "  spaced=1\t\ttabbed=2  ",
            vec![p("spaced", 1.0), p("tabbed", 2.0)],
        ),
        ("inf=inf nan=NaN", vec![]),
    ];
    for (input, want) in cases {
        assert_eq!(&parse_perfdata(input), want, "input {input:?}");
    }
}

#[test]
fn output_table() {
    let cases: &[(&str, &str, Vec<Perf>)] = &[
        ("", "", vec![]),
        ("OK - all good", "OK - all good", vec![]),
        (
            "LOAD OK - total load average: 0.15, 0.20, 0.18|load1=0.150;5.000;10.000;0;\n",
            "LOAD OK - total load average: 0.15, 0.20, 0.18",
            vec![p("load1", 0.15)],
        ),
        (
            "DISK OK | /=10MB;;;0;100\nlong text line 1\nline 2 | /boot=1MB\n/home=2MB\n",
            "DISK OK",
            vec![
                p("/", 10.0 * 1048576.0),
                p("/boot", 1048576.0),
                p("/home", 2.0 * 1048576.0),
            ],
        ),
        (
            "no perf on first line\nbut long text | x=1",
            "no perf on first line",
            vec![p("x", 1.0)],
        ),
        ("CRITICAL: broken |", "CRITICAL: broken", vec![]),
    ];
    for (input, msg, want) in cases {
        let (m, perf) = parse_output(input);
        assert_eq!(&m, msg, "input {input:?}");
        assert_eq!(&perf, want, "input {input:?}");
    }
}
