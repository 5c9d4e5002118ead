//! The README's console pictures are the snapshot tests' screens: when a
//! test in `console.rs` snapshots one of the screens below, it hands the
//! model here, which draws it again in colour (the snapshots are taken with
//! `NO_COLOR`; the text must not differ), scrubs dates and times as the
//! snapshot does, renders it to SVG (`tests/common/svg.rs`) and compares it
//! with the committed `docs/console/<name>_<w>x<h>.svg`. A screen that
//! changed fails its test until the pictures are rewritten with
//! `KEYFALL_UPDATE_PICTURES=1 cargo test console` (and committed).

#[path = "../common/svg.rs"]
mod svg;

use std::path::{Path, PathBuf};

use keyfall::app::{Model, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

/// Snapshot name → (picture name, what it shows).
const PICTURES: &[(&str, &str, &str)] = &[
    ("main", "main", "the main screen"),
    ("resolve_paid2_generate_images", "resolve", "the resolve trace"),
    ("save_preview", "save_preview", "the save preview"),
    ("conflict", "conflict", "the conflict view"),
    ("as_of", "as_of", "the world as of a moment, read-only"),
    ("palette", "palette", "the : palette"),
];

/// The sizes the snapshots are taken at.
const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

const UPDATE: &str = "KEYFALL_UPDATE_PICTURES";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console")
}

fn draw(model: &Model) -> Buffer {
    let (w, h) = model.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| view::draw(model, f)).unwrap();
    terminal.backend().buffer().clone()
}

/// Dates and times written by the test, replaced cell by cell as the
/// snapshot's text is (`console::scrub`).
fn scrub(buffer: &mut Buffer) {
    let area = buffer.area;
    for y in area.top()..area.bottom() {
        let mut text = String::new();
        let mut cell_of = Vec::new();
        for x in area.left()..area.right() {
            for c in buffer[(x, y)].symbol().chars() {
                text.push(c);
                cell_of.push(x);
            }
        }
        let scrubbed: Vec<char> = crate::console::scrub(&text).chars().collect();
        assert_eq!(scrubbed.len(), cell_of.len(), "scrubbing keeps the width");
        for ((before, after), x) in text.chars().zip(scrubbed).zip(cell_of) {
            if before != after {
                buffer[(x, y)].set_char(after);
            }
        }
    }
}

/// If `name` is one of the README's pictures, check (or, with
/// `KEYFALL_UPDATE_PICTURES` set, write) it at the model's current size.
pub fn check(model: &mut Model, name: &str) {
    let Some(&(_, picture, what)) = PICTURES.iter().find(|p| p.0 == name) else { return };
    let (w, h) = model.size;
    let plain = draw(model);
    let no_color = model.session.no_color;
    model.session.no_color = false;
    let mut colored = draw(model);
    model.session.no_color = no_color;
    let symbols = |b: &Buffer| b.content.iter().map(|c| c.symbol().to_string()).collect::<Vec<_>>();
    assert_eq!(symbols(&plain), symbols(&colored), "{name}: colour changes the style only, never the text");
    scrub(&mut colored);
    let svg = svg::render(&colored, &format!("keyfall: {what}, {w}×{h}"));
    let file = format!("{picture}_{w}x{h}.svg");
    let path = dir().join(&file);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == svg {
        return;
    }
    if std::env::var_os(UPDATE).is_some_and(|v| !v.is_empty()) {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, svg).unwrap();
        return;
    }
    panic!(
        "docs/console/{file} is not the screen `{name}` draws now ({}); if the change is meant, \
         rewrite the README's pictures with `{UPDATE}=1 cargo test console` and commit them",
        if committed.is_empty() { "missing" } else { "it differs" }
    );
}

#[test]
fn the_readme_shows_every_picture_and_docs_console_holds_no_other() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut expected = Vec::new();
    for (_, picture, _) in PICTURES {
        for (w, h) in SIZES {
            let file = format!("{picture}_{w}x{h}.svg");
            assert!(readme.contains(&format!("(docs/console/{file})")), "README.md does not show docs/console/{file}");
            assert!(dir().join(&file).is_file(), "docs/console/{file} is missing: {UPDATE}=1 cargo test console");
            expected.push(file);
        }
    }
    let mut found: Vec<String> =
        std::fs::read_dir(dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "docs/console holds a picture no test draws");
}
