use super::*;

#[test]
fn hazards_are_escaped_and_the_rest_kept() {
    assert_eq!(visible("plain /var/log é"), "plain /var/log é");
    assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    assert_eq!(
        visible("a\u{1b}[31m\u{7}\u{9b}\u{7f}\nb\t\u{202e}c"),
        "a\\x1b[31m\\x07\\x9b\\x7f\\nb\\t\\u{202e}c"
    );
}
