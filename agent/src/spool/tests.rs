use super::*;

fn rec(i: u32) -> Vec<u8> {
    format!("batch-{i:05}-{}", "x".repeat(100)).into_bytes()
}

fn drain(b: &mut Backlog) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(p) = b.peek().unwrap() {
        out.push(p);
        b.pop().unwrap();
    }
    out
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn fifo_across_segments_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, r) = Backlog::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(r, Recovery::default());
    // 128 KiB segments: 1,500 records of ~120 bytes span two of them.
    for i in 0..1500 {
        b.push(&rec(i)).unwrap();
    }
    assert!(segments(dir.path()).len() >= 2);
    assert_eq!(b.len(), 1500);
    for i in 0..10 {
        assert_eq!(b.peek().unwrap(), Some(rec(i)));
        b.pop().unwrap();
    }
    drop(b);
    let (mut b, r) = Backlog::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(r.records, 1490, "{r:?}");
    let got = drain(&mut b);
    assert_eq!(got, (10..1500).map(rec).collect::<Vec<_>>());
    // Fully consumed: no segment files left behind.
    assert!(segments(dir.path()).is_empty());
    b.push(&rec(2000)).unwrap();
    drop(b);
    let (mut b, _) = Backlog::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(drain(&mut b), vec![rec(2000)]);
}

#[test]
fn a_torn_write_loses_only_the_record_being_written() {
    for cut in [1u64, 4, 8, 9, 50, 107] {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, _) = Backlog::open(dir.path(), 1 << 20).unwrap();
        for i in 0..3 {
            b.push(&rec(i)).unwrap();
        }
        drop(b);
        let seg = segments(dir.path()).pop().unwrap();
        let len = std::fs::metadata(&seg).unwrap().len();
        // Cut into the third record, as a crash mid-write would.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - cut)
            .unwrap();
        let (mut b, r) = Backlog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(r.records, 2, "cut {cut}: {r:?}");
        assert_eq!(
            r.torn_bytes,
            rec(2).len() as u64 + HEADER - cut,
            "cut {cut}"
        );
        // New records follow the good ones, readable.
        b.push(&rec(3)).unwrap();
        assert_eq!(drain(&mut b), vec![rec(0), rec(1), rec(3)], "cut {cut}");
    }
}

#[test]
fn garbage_and_flipped_bits_are_cut_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = Backlog::open(dir.path(), 1 << 20).unwrap();
    b.push(&rec(0)).unwrap();
    b.push(&rec(1)).unwrap();
    drop(b);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    // Flip one payload bit of the second record.
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    bytes.extend_from_slice(&[0xff; 13]);
    std::fs::write(&seg, &bytes).unwrap();
    let (mut b, r) = Backlog::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(r.records, 1);
    assert_eq!(drain(&mut b), vec![rec(0)]);
}

#[test]
fn full_spool_drops_oldest_first_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let max = 128 * 1024;
    let (mut b, _) = Backlog::open(dir.path(), max).unwrap();
    let mut dropped = 0;
    for i in 0..2000 {
        dropped += b.push(&rec(i)).unwrap();
        assert!(b.bytes() <= max, "{} > {max}", b.bytes());
    }
    assert!(dropped > 0);
    assert_eq!(b.dropped, dropped);
    assert_eq!(b.len() + dropped, 2000);
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= max, "{on_disk}");
    // What is left is the newest, in order.
    let got = drain(&mut b);
    let first = 2000 - got.len() as u32;
    assert_eq!(got, (first..2000).map(rec).collect::<Vec<_>>());
}

#[test]
fn one_agent_per_spool() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, _) = Backlog::open(dir.path(), 1 << 20).unwrap();
    let e = Backlog::open(dir.path(), 1 << 20).unwrap_err();
    assert!(e.to_string().contains("in use by another agent"), "{e}");
}

#[test]
fn memory_backlog_is_bounded() {
    let mut b = Backlog::memory(10 * 1024);
    for i in 0..1000 {
        b.push(&rec(i)).unwrap();
    }
    assert!(b.bytes() <= 10 * 1024);
    assert!(!b.is_durable());
    let got = drain(&mut b);
    assert_eq!(got.last(), Some(&rec(999)));
    assert_eq!(b.dropped + got.len() as u64, 1000);
}
