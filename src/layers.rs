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

/// The modules of `app/` (one a file: `app`, `app::model`, `app::state::admin`,
/// `app::editor::keys`, …) and, for each, the modules of `app/` it names
/// (`use super::…`, `crate::app::…`, inline paths too), its tests left out.
/// `mod` lines and `pub use` re-exports of a module's own parts aside,
/// naming a module is depending on it.
fn app_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let module_of = |file: &Path| -> String {
        let rel = file.strip_prefix(&root).expect("under src").with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        parts.join("::")
    };
    let files = sources(&root.join("app"));
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    // `base::a::b::…`: the longest known module it names.
    let resolve = |base: &str, path: &[&str]| -> Option<String> {
        let mut best = None;
        let mut at = base.to_string();
        for seg in path {
            at = format!("{at}::{seg}");
            if modules.contains(&at) {
                best = Some(at.clone());
            }
        }
        best
    };
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = module_of(file);
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // The file's own tests may use anything.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = text
            .lines()
            .filter(|l| {
                !l.trim_start().starts_with("//")
                    && !l.trim_start().starts_with("mod ")
                    && !l.trim_start().starts_with("pub mod ")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parent = me.rsplit_once("::").map(|(p, _)| p.to_string()).unwrap_or_default();
        let mut deps = BTreeSet::new();
        // Every path (`super::…`, `crate::app::…`, a child's `name::…`),
        // braces opened one level deep.
        let chars: Vec<char> = code.chars().collect();
        let ident = |c: char| c.is_alphanumeric() || c == '_';
        let mut i = 0;
        while i < chars.len() {
            if !ident(chars[i]) || (i > 0 && (ident(chars[i - 1]) || chars[i - 1] == ':')) {
                i += 1;
                continue;
            }
            let mut path = String::new();
            while i < chars.len() && (ident(chars[i]) || chars[i] == ':') {
                path.push(chars[i]);
                i += 1;
            }
            if !path.contains("::") {
                continue;
            }
            let (base, path) = if let Some(p) = path.strip_prefix("crate::app::") {
                ("app".to_string(), p.to_string())
            } else if let Some(p) = path.strip_prefix("super::") {
                (parent.clone(), p.to_string())
            } else {
                (me.clone(), path.strip_prefix("self::").unwrap_or(&path).to_string())
            };
            let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            if i < chars.len() && chars[i] == '{' {
                let end = chars[i..].iter().position(|c| *c == '}').map(|p| i + p).unwrap_or(chars.len());
                let inside: String = chars[i + 1..end].iter().collect();
                for item in inside.split(',').filter(|i| !i.trim().is_empty()) {
                    let mut full: Vec<&str> = segs.clone();
                    full.extend(item.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "self"));
                    match resolve(&base, &full) {
                        Some(m) => {
                            deps.insert(m);
                        }
                        // An item of `app` itself (`use super::{Model}` in a child of `app`).
                        None if base == "app" && me != "app" => {
                            deps.insert("app".to_string());
                        }
                        None => {}
                    }
                }
                i = end;
            } else if let Some(m) = resolve(&base, &segs) {
                deps.insert(m);
            } else if base == "app" && me != "app" && !segs.is_empty() {
                deps.insert("app".to_string());
            }
        }
        deps.remove(&me);
        graph.insert(me, deps);
    }
    graph
}

/// The first circle of imports found in `graph`, as a path back to its start.
fn a_circle(graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        state: &mut std::collections::BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut circle = stack[from..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = std::collections::BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(node, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// The bottom of `app/`: the widgets, the keymap, the request ids, the
/// model and every screen's state. It names nothing above it.
fn is_bottom(module: &str) -> bool {
    matches!(module, "app::widgets" | "app::keymap" | "app::request" | "app::scroll" | "app::model" | "app::accounts")
        || module.starts_with("app::state")
}

#[test]
fn app_has_no_import_circle() {
    let graph = app_imports();
    assert!(graph.len() > 20 && graph["app"].contains("app::model"), "the graph is read: {graph:?}");
    if let Some(circle) = a_circle(&graph) {
        panic!("an import circle in app/: {}", circle.join(" -> "));
    }
}

#[test]
fn the_bottom_of_app_imports_no_screen_and_no_router() {
    let graph = app_imports();
    let bad: Vec<String> = graph
        .iter()
        .filter(|(m, _)| is_bottom(m))
        .flat_map(|(m, deps)| deps.iter().filter(|d| !is_bottom(d)).map(move |d| format!("{m} -> {d}")))
        .collect();
    assert!(
        bad.is_empty(),
        "the widgets, the model and the screens' state import nothing above them:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_circle_finder_finds_circles() {
    use std::collections::{BTreeMap, BTreeSet};
    let edges = |pairs: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(a_circle(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    let circle = a_circle(&edges(&[("a", "b"), ("b", "c"), ("c", "a")])).expect("a circle");
    assert_eq!(circle.first(), circle.last());
    assert_eq!(circle.len(), 4);
}
