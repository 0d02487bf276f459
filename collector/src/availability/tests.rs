use super::*;
use Avail::*;

const M: i64 = 60_000;

fn tl(points: &[(i64, Avail)]) -> Timeline {
    Timeline::from_points(points.to_vec())
}

#[test]
fn set_records_changes_only_and_never_rewrites_history() {
    let mut t = Timeline::default();
    assert_eq!(t.current(), Unknown);
    assert_eq!(t.set(Up, 10), Some(10));
    assert_eq!(t.set(Up, 20), None);
    assert_eq!(t.set(Down, 30), Some(30));
    // Older than the current state's start: recorded at that start.
    assert_eq!(t.set(Up, 25), Some(30));
    // ... which made it equal to the state before: collapsed.
    assert_eq!(t.points(), &[(10, Up)]);
    assert_eq!(t.set(Unknown, 40), Some(40));
    assert_eq!(t.at(39), Up);
    assert_eq!(t.at(40), Unknown);
    assert_eq!(t.at(9), Unknown);
}

#[test]
fn a_window_splits_exactly_at_its_boundaries() {
    // Up from 0, down at 50 min for 6 min, up again.
    let t = tl(&[(0, Up), (50 * M, Down), (56 * M, Up)]);
    let w = tally(&t, &[], 0, 60 * M);
    assert_eq!(
        w,
        Tally {
            up_ms: 54 * M,
            down_ms: 6 * M,
            unknown_ms: 0,
            planned_ms: 0
        }
    );
    assert_eq!(w.ratio(), Some(0.9));
    // A window that starts inside the outage counts only its part.
    let w = tally(&t, &[], 53 * M, 63 * M);
    assert_eq!((w.up_ms, w.down_ms), (7 * M, 3 * M));
    // A window that ends exactly where the outage starts sees none of it.
    assert_eq!(tally(&t, &[], 0, 50 * M).down_ms, 0);
    // Before the first change: unknown, outside the ratio.
    let w = tally(&t, &[], -10 * M, 10 * M);
    assert_eq!((w.unknown_ms, w.up_ms), (10 * M, 10 * M));
    assert_eq!(w.ratio(), Some(1.0));
}

#[test]
fn a_restart_gap_is_unknown_not_down() {
    // Up, the collector dies at 20 (its last alive mark), restarts at 30
    // and hears from the host at 31.
    let t = tl(&[(0, Up), (20 * M, Unknown), (31 * M, Up)]);
    let w = tally(&t, &[], 0, 60 * M);
    assert_eq!((w.up_ms, w.down_ms, w.unknown_ms), (49 * M, 0, 11 * M));
    assert_eq!(w.ratio(), Some(1.0));
    assert_eq!(w.up_ms + w.down_ms + w.unknown_ms + w.planned_ms, 60 * M);
}

#[test]
fn planned_time_is_taken_out_whatever_the_state() {
    // Down from 10 to 40; a change covers 0–20 and maintenance 30–35.
    let t = tl(&[(0, Up), (10 * M, Down), (40 * M, Up)]);
    let planned = merge(vec![(30 * M, 35 * M), (0, 20 * M), (5 * M, 15 * M)]);
    assert_eq!(planned, vec![(0, 20 * M), (30 * M, 35 * M)]);
    let w = tally(&t, &planned, 0, 60 * M);
    assert_eq!(
        w,
        Tally {
            up_ms: 20 * M,
            down_ms: 15 * M,
            unknown_ms: 0,
            planned_ms: 25 * M
        }
    );
    assert_eq!(w.ratio(), Some(20.0 / 35.0));
}

#[test]
fn services_combine_all_and_any() {
    // a: down 10–20; b: down 15–30, unknown 40–50.
    let a = tl(&[(0, Up), (10 * M, Down), (20 * M, Up)]);
    let b = tl(&[
        (0, Up),
        (15 * M, Down),
        (30 * M, Up),
        (40 * M, Unknown),
        (50 * M, Up),
    ]);
    let none: &[(i64, i64)] = &[];
    let members = [(&a, none), (&b, none)];
    let all = service_tally(&members, Mode::All, 0, 60 * M);
    assert_eq!(
        (all.up_ms, all.down_ms, all.unknown_ms),
        (30 * M, 20 * M, 10 * M)
    );
    let any = service_tally(&members, Mode::Any, 0, 60 * M);
    // Both down only 15–20; b unknown while a is up is up.
    assert_eq!((any.up_ms, any.down_ms, any.unknown_ms), (55 * M, 5 * M, 0));
    // a in maintenance 0–30: only b counts then; everything planned when both are.
    let a_planned = [(0, 30 * M)];
    let members = [(&a, &a_planned[..]), (&b, none)];
    let all = service_tally(&members, Mode::All, 0, 60 * M);
    assert_eq!(
        (all.up_ms, all.down_ms, all.unknown_ms),
        (35 * M, 15 * M, 10 * M)
    );
    let both = [(&a, &a_planned[..]), (&b, &a_planned[..])];
    let all = service_tally(&both, Mode::All, 0, 60 * M);
    assert_eq!((all.planned_ms, all.up_ms), (30 * M, 20 * M));
    // No members: unknown, no ratio.
    let empty = service_tally(&[], Mode::All, 0, 60 * M);
    assert_eq!((empty.unknown_ms, empty.ratio()), (60 * M, None));
}

#[test]
fn prune_keeps_the_state_at_the_horizon() {
    let mut t = tl(&[(0, Up), (10, Down), (20, Up), (30, Down)]);
    t.prune(25);
    assert_eq!(t.points(), &[(20, Up), (30, Down)]);
    assert_eq!(tally(&t, &[], 25, 35).up_ms, 5);
}

#[test]
fn budget_and_burn() {
    // 99.95 % against 99.9 %: half the budget left, burning at 0.5×.
    assert!((budget_remaining(0.9995, 0.999) - 0.5).abs() < 1e-9);
    assert!((burn_rate(0.9995, 0.999) - 0.5).abs() < 1e-9);
    assert!((burn_rate(0.9856, 0.999) - 14.4).abs() < 1e-9);
    assert!(budget_remaining(0.99, 0.999) < 0.0);
}
