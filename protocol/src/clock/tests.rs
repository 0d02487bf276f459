use super::*;

#[test]
fn durations_saturate_instead_of_wrapping() {
    assert_eq!(duration_ms(Duration::from_millis(1500)), 1500);
    assert_eq!(duration_ms(Duration::MAX), i64::MAX);
}

#[test]
fn the_clock_is_past_2020() {
    assert!(now_ms() > 1_577_836_800_000);
}
