//! The layer rule of the collector and the agent (see each crate's `lib.rs`
//! `# Layers` list and ARCHITECTURE.md): modules only use modules below them.

use std::path::Path;

use vedette_tests::layers::{code, order, uses, violations};

fn crate_src(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn collector_modules_only_use_modules_below_them() {
    let v = violations(&crate_src("collector"));
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn agent_modules_only_use_modules_below_them() {
    let v = violations(&crate_src("agent"));
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn an_upward_import_is_caught_in_every_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(
        src.join("lib.rs"),
        "//! # Layers\n//!\n//! 1. bottom: `low`\n//! 2. top: `high`\n\npub mod high;\npub mod low;\n",
    )
    .unwrap();
    std::fs::write(src.join("high.rs"), "use crate::low::X;\n").unwrap();
    std::fs::write(src.join("low.rs"), "pub struct X;\n").unwrap();
    assert_eq!(violations(src), Vec::<String>::new());
    for upward in [
        "use crate::high::Y;",
        "use crate::{high, other};",
        "use crate::{other::{a, b}, high::Y};",
        "fn f() { crate::high::g() }",
        "use crate::{\n    high::Y,\n};",
    ] {
        std::fs::write(src.join("low.rs"), format!("pub struct X;\n{upward}\n")).unwrap();
        let v = violations(src);
        assert_eq!(v.len(), 1, "{upward}: {v:?}");
        assert!(v[0].contains("`low` uses `crate::high`"), "{v:?}");
    }
    // Also in a file of the module's directory.
    std::fs::write(src.join("low.rs"), "pub struct X;\nmod deep;\n").unwrap();
    std::fs::create_dir(src.join("low")).unwrap();
    std::fs::write(src.join("low/deep.rs"), "use crate::high;\n").unwrap();
    assert_eq!(violations(src).len(), 1);
    // Not in comments, strings or the test module.
    std::fs::write(
        src.join("low/deep.rs"),
        "// crate::high\n/// [`crate::high`]\nconst S: &str = \"crate::high\";\nconst R: &str = r#\"crate::high\"#;\nconst C: char = '\"';\n#[cfg(test)]\nmod tests {\n    use crate::high;\n}\n",
    )
    .unwrap();
    assert_eq!(violations(src), Vec::<String>::new());
    // A module the list forgets is a breach too.
    std::fs::write(
        src.join("lib.rs"),
        "//! # Layers\n//!\n//! 1. bottom: `low`\n//! 2. top: `high`\n\npub mod high;\npub mod low;\nmod stray;\n",
    )
    .unwrap();
    assert!(violations(src)[0].contains("`stray`"));
}

#[test]
fn the_layer_list_and_uses_are_read_as_written() {
    let lib = "//! intro\n//! # Layers\n//!\n//! 1. domain: `a`, `b`\n//!    more words\n//! 2. edge: `c`\n//!\n//! # Other\n//! 3. not: `d`\n";
    assert_eq!(order(lib), ["a", "b", "c"]);
    let u = uses(&code(
        "use crate::a::{X, Y};\nuse crate::{b, c::Z};\nfn f() { crate::d::g(); my_crate::e(); }",
    ));
    assert_eq!(u.into_iter().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
}
