//! What may import what (ARCHITECTURE.md, "What may import what"), read
//! from the source itself: a `use` of a layer above, or of a crate a layer
//! must not know, anywhere in a layer's files fails here with the line.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of the layer `dir` (a folder under src/) that name one of
/// `forbidden` (`crate::store`, `sqlx::`, …), comments left out.
fn offences(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let files = sources(&root);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for word in forbidden {
                if code.contains(word) {
                    out.push(format!("{}:{}: {word}: {}", file.display(), n + 1, code));
                }
            }
        }
    }
    out
}

#[test]
fn domain_imports_nothing_of_keyfall_outside_it_and_no_io_crate() {
    let bad = offences(
        "domain",
        &[
            "crate::store",
            "crate::app",
            "crate::tui",
            "crate::cli",
            "crate::config",
            "crate::connection",
            "crate::preview",
            "sqlx::",
            "tokio::",
            "reqwest::",
            "ratatui::",
            "crossterm::",
            "std::fs",
            "std::env",
            "std::net",
            "std::process",
        ],
    );
    assert!(bad.is_empty(), "domain is pure:\n{}", bad.join("\n"));
}

#[test]
fn store_imports_no_layer_above_it() {
    let bad = offences("store", &["crate::app", "crate::tui", "crate::cli", "crate::config", "crate::preview"]);
    assert!(bad.is_empty(), "store speaks domain types only:\n{}", bad.join("\n"));
}

#[test]
fn app_imports_neither_the_store_nor_the_terminal_nor_the_runtime() {
    let bad = offences(
        "app",
        &["crate::store", "crate::tui", "crate::cli", "crate::config", "sqlx::", "tokio::", "crossterm::"],
    );
    assert!(bad.is_empty(), "app is Model/Msg/Cmd and pure update:\n{}", bad.join("\n"));
}

#[test]
fn the_runtime_imports_no_command() {
    let bad = offences("tui", &["crate::cli"]);
    assert!(bad.is_empty(), "tui runs the console, below cli:\n{}", bad.join("\n"));
}
