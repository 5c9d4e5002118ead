//! A ratatui `Buffer` as a self-contained SVG that looks like a screenshot of
//! a dark terminal: the README's console pictures (`tests/it/pictures.rs`).
//!
//! Text is drawn in runs: consecutive cells of one style become one `<text>`
//! whose `textLength` pins it to the cell grid, whatever monospace font the
//! viewer has. Symbols outside the monospace fonts' common ground (markers,
//! arrows, circled digits, wide characters) stand alone, centred on their
//! cells, so a fallback font cannot push the rest of the line. Box-drawing
//! and block characters are drawn as lines and rectangles, so borders join
//! without gaps. Nothing varies between runs: no ids, no clock.

use std::collections::BTreeMap;
use std::fmt::Write;

use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::style::{Color, Modifier};
use ratatui::text::Span;

/// One cell is CELL_W × CELL_H pixels; 15px monospace fonts advance ~9px.
const CELL_W: f64 = 9.0;
const CELL_H: f64 = 19.0;
const FONT_SIZE: f64 = 15.0;
/// From a row's top to the text's baseline.
const BASELINE: f64 = 14.0;
const PAD: f64 = 14.0;
/// The window's title bar.
const TITLE_H: f64 = 32.0;
const FONTS: &str = "ui-monospace, SFMono-Regular, 'SF Mono', Menlo, Consolas, 'DejaVu Sans Mono', \
                     'Liberation Mono', 'Noto Sans Mono', monospace";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rgb(u8, u8, u8);

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

pub const DEFAULT_FG: Rgb = Rgb(0xd4, 0xd4, 0xd4);
pub const DEFAULT_BG: Rgb = Rgb(0x1e, 0x1e, 0x1e);
const TITLE_BG: Rgb = Rgb(0x2b, 0x2b, 0x2b);
const FRAME: Rgb = Rgb(0x3c, 0x3c, 0x3c);

/// The 16 ANSI colours (a VS Code–like dark palette), in xterm order.
const ANSI: [Rgb; 16] = [
    Rgb(0x00, 0x00, 0x00),
    Rgb(0xcd, 0x31, 0x31),
    Rgb(0x0d, 0xbc, 0x79),
    Rgb(0xe5, 0xe5, 0x10),
    Rgb(0x24, 0x72, 0xc8),
    Rgb(0xbc, 0x3f, 0xbc),
    Rgb(0x11, 0xa8, 0xcd),
    Rgb(0xe5, 0xe5, 0xe5),
    Rgb(0x76, 0x76, 0x76),
    Rgb(0xf1, 0x4c, 0x4c),
    Rgb(0x23, 0xd1, 0x8b),
    Rgb(0xf5, 0xf5, 0x43),
    Rgb(0x3b, 0x8e, 0xea),
    Rgb(0xd6, 0x70, 0xd6),
    Rgb(0x29, 0xb8, 0xdb),
    Rgb(0xff, 0xff, 0xff),
];

/// An xterm 256-colour index: the 16 ANSI colours, the 6×6×6 cube, 24 greys.
pub fn indexed(i: u8) -> Rgb {
    match i {
        0..=15 => ANSI[i as usize],
        16..=231 => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            let i = i - 16;
            Rgb(level(i / 36), level(i / 6 % 6), level(i % 6))
        }
        _ => {
            let v = 8 + 10 * (i - 232);
            Rgb(v, v, v)
        }
    }
}

/// ratatui's colour as drawn; `None` for `Reset` (the default fg or bg).
pub fn rgb(color: Color) -> Option<Rgb> {
    let ansi = |i: usize| Some(ANSI[i]);
    match color {
        Color::Reset => None,
        Color::Black => ansi(0),
        Color::Red => ansi(1),
        Color::Green => ansi(2),
        Color::Yellow => ansi(3),
        Color::Blue => ansi(4),
        Color::Magenta => ansi(5),
        Color::Cyan => ansi(6),
        Color::Gray => ansi(7),
        Color::DarkGray => ansi(8),
        Color::LightRed => ansi(9),
        Color::LightGreen => ansi(10),
        Color::LightYellow => ansi(11),
        Color::LightBlue => ansi(12),
        Color::LightMagenta => ansi(13),
        Color::LightCyan => ansi(14),
        Color::White => ansi(15),
        Color::Indexed(i) => Some(indexed(i)),
        Color::Rgb(r, g, b) => Some(Rgb(r, g, b)),
    }
}

/// `a` moved `t` of the way towards `b`.
fn mix(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let m = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    Rgb(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// A cell's style as the terminal would paint it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    fg: Rgb,
    bg: Rgb,
    bold: bool,
    italic: bool,
    underline: Option<Rgb>,
    strike: bool,
    hidden: bool,
}

fn look(cell: &ratatui::buffer::Cell) -> Look {
    let m = cell.modifier;
    let (mut fg, mut bg) = (rgb(cell.fg).unwrap_or(DEFAULT_FG), rgb(cell.bg).unwrap_or(DEFAULT_BG));
    if m.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
    }
    if m.contains(Modifier::DIM) {
        fg = mix(fg, bg, 0.4);
    }
    Look {
        fg,
        bg,
        bold: m.contains(Modifier::BOLD),
        italic: m.contains(Modifier::ITALIC),
        underline: m.contains(Modifier::UNDERLINED).then(|| rgb(cell.underline_color).unwrap_or(fg)),
        strike: m.contains(Modifier::CROSSED_OUT),
        hidden: m.contains(Modifier::HIDDEN),
    }
}

/// What a grapheme is drawn as.
enum Glyph {
    Blank,
    /// Part of a text run: characters every monospace font has.
    Run(char),
    /// Drawn alone, centred on its cells.
    Symbol(String),
    /// Box drawing: arm weights left, right, up, down (1 light, 2 heavy,
    /// 3 double); `round` for ╭╮╯╰.
    Box {
        arms: [u8; 4],
        round: bool,
    },
    /// Block elements: (left, top, width, height) as fractions of the
    /// cell, and an opacity for the shades.
    Block {
        rect: (f64, f64, f64, f64),
        opacity: f64,
    },
}

fn box_arms(c: char) -> Option<([u8; 4], bool)> {
    let arms = |l, r, u, d| Some(([l, r, u, d], false));
    let round = |l, r, u, d| Some(([l, r, u, d], true));
    match c {
        '─' => arms(1, 1, 0, 0),
        '│' => arms(0, 0, 1, 1),
        '┌' => arms(0, 1, 0, 1),
        '┐' => arms(1, 0, 0, 1),
        '└' => arms(0, 1, 1, 0),
        '┘' => arms(1, 0, 1, 0),
        '├' => arms(0, 1, 1, 1),
        '┤' => arms(1, 0, 1, 1),
        '┬' => arms(1, 1, 0, 1),
        '┴' => arms(1, 1, 1, 0),
        '┼' => arms(1, 1, 1, 1),
        '╴' => arms(1, 0, 0, 0),
        '╶' => arms(0, 1, 0, 0),
        '╵' => arms(0, 0, 1, 0),
        '╷' => arms(0, 0, 0, 1),
        '╭' => round(0, 1, 0, 1),
        '╮' => round(1, 0, 0, 1),
        '╯' => round(1, 0, 1, 0),
        '╰' => round(0, 1, 1, 0),
        '━' => arms(2, 2, 0, 0),
        '┃' => arms(0, 0, 2, 2),
        '┏' => arms(0, 2, 0, 2),
        '┓' => arms(2, 0, 0, 2),
        '┗' => arms(0, 2, 2, 0),
        '┛' => arms(2, 0, 2, 0),
        '┣' => arms(0, 2, 2, 2),
        '┫' => arms(2, 0, 2, 2),
        '┳' => arms(2, 2, 0, 2),
        '┻' => arms(2, 2, 2, 0),
        '╋' => arms(2, 2, 2, 2),
        '═' => arms(3, 3, 0, 0),
        '║' => arms(0, 0, 3, 3),
        '╔' => arms(0, 3, 0, 3),
        '╗' => arms(3, 0, 0, 3),
        '╚' => arms(0, 3, 3, 0),
        '╝' => arms(3, 0, 3, 0),
        '╠' => arms(0, 3, 3, 3),
        '╣' => arms(3, 0, 3, 3),
        '╦' => arms(3, 3, 0, 3),
        '╩' => arms(3, 3, 3, 0),
        '╬' => arms(3, 3, 3, 3),
        _ => None,
    }
}

fn block(c: char) -> Option<((f64, f64, f64, f64), f64)> {
    match c {
        '█' => Some(((0.0, 0.0, 1.0, 1.0), 1.0)),
        '▀' => Some(((0.0, 0.0, 1.0, 0.5), 1.0)),
        '▄' => Some(((0.0, 0.5, 1.0, 0.5), 1.0)),
        '▌' => Some(((0.0, 0.0, 0.5, 1.0), 1.0)),
        '▐' => Some(((0.5, 0.0, 0.5, 1.0), 1.0)),
        '░' => Some(((0.0, 0.0, 1.0, 1.0), 0.25)),
        '▒' => Some(((0.0, 0.0, 1.0, 1.0), 0.5)),
        '▓' => Some(((0.0, 0.0, 1.0, 1.0), 0.75)),
        _ => None,
    }
}

fn glyph(symbol: &str) -> Glyph {
    let mut chars = symbol.chars();
    let Some(c) = chars.next() else { return Glyph::Blank };
    if chars.next().is_some() {
        return Glyph::Symbol(symbol.to_string());
    }
    if c == ' ' || c == '\u{a0}' {
        return Glyph::Blank;
    }
    if let Some((arms, round)) = box_arms(c) {
        return Glyph::Box { arms, round };
    }
    if let Some((rect, opacity)) = block(c) {
        return Glyph::Block { rect, opacity };
    }
    match c {
        // Latin letters and the punctuation every monospace font carries.
        '\u{21}'..='\u{7e}' | '\u{a1}'..='\u{24f}' | '\u{2010}'..='\u{2027}' => Glyph::Run(c),
        c if c.is_control() => Glyph::Symbol('\u{fffd}'.to_string()),
        _ => Glyph::Symbol(c.to_string()),
    }
}

/// XML text: the three characters that matter, and no control characters
/// (XML 1.0 forbids them; the console shows them escaped anyway).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate: whole or with one decimal, never `25.200000000000003`.
fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 { format!("{}", r as i64) } else { format!("{r:.1}") }
}

/// A line of text at one style, pinned to the grid.
struct Run {
    x: u16,
    cells: u16,
    text: String,
    fg: Rgb,
    bold: bool,
    italic: bool,
    /// Spaces seen since the last character; two or more end the run.
    spaces: u16,
}

/// A straight stroke, in half pixels so that merging compares exactly:
/// (horizontal, fixed coordinate, from, to).
type Stroke = (bool, i64, i64, i64);

#[derive(Default)]
struct Canvas {
    backgrounds: Vec<(u16, u16, u16, Rgb)>,
    blocks: Vec<String>,
    strokes: BTreeMap<(Rgb, u8), Vec<Stroke>>,
    curves: BTreeMap<Rgb, Vec<String>>,
    /// Underlines and strike-throughs: row, (x, cells, colour), offset from
    /// the baseline.
    lines: Vec<(u16, (u16, u16, Rgb), f64)>,
    texts: Vec<String>,
}

fn left(x: u16) -> f64 {
    PAD + x as f64 * CELL_W
}

fn top(y: u16) -> f64 {
    TITLE_H + y as f64 * CELL_H
}

fn half(v: f64) -> i64 {
    (v * 2.0).round() as i64
}

/// The attributes of text that differ from the default.
fn text_attrs(fg: Rgb, bold: bool, italic: bool) -> String {
    let mut a = String::new();
    if fg != DEFAULT_FG {
        write!(a, " fill=\"{fg}\"").unwrap();
    }
    match (bold, italic) {
        (true, true) => a.push_str(" class=\"b i\""),
        (true, false) => a.push_str(" class=\"b\""),
        (false, true) => a.push_str(" class=\"i\""),
        (false, false) => {}
    }
    a
}

impl Canvas {
    fn flush(&mut self, run: &mut Option<Run>, y: u16) {
        let Some(r) = run.take() else { return };
        let attrs = text_attrs(r.fg, r.bold, r.italic);
        self.texts.push(format!(
            "<text x=\"{}\" y=\"{}\" textLength=\"{}\"{attrs}>{}</text>",
            num(left(r.x)),
            num(top(y) + BASELINE),
            num(r.cells as f64 * CELL_W),
            escape(&r.text)
        ));
    }

    fn symbol(&mut self, s: &str, x: u16, width: u16, y: u16, l: Look) {
        let attrs = text_attrs(l.fg, l.bold, l.italic);
        self.texts.push(format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\"{attrs}>{}</text>",
            num(left(x) + width as f64 * CELL_W / 2.0),
            num(top(y) + BASELINE),
            escape(s)
        ));
    }

    fn box_arms(&mut self, arms: [u8; 4], round: bool, x: u16, y: u16, color: Rgb) {
        let (x0, y0) = (left(x), top(y));
        let (x1, y1) = (x0 + CELL_W, y0 + CELL_H);
        let (cx, cy) = (x0 + CELL_W / 2.0, y0 + CELL_H / 2.0);
        if round {
            // One quarter curve from the horizontal arm's edge to the
            // vertical arm's edge, through the centre's corner.
            let hx = if arms[0] > 0 { x0 } else { x1 };
            let vy = if arms[2] > 0 { y0 } else { y1 };
            self.curves.entry(color).or_default().push(format!(
                "M{} {}Q{} {} {} {}",
                num(hx),
                num(cy),
                num(cx),
                num(cy),
                num(cx),
                num(vy)
            ));
            return;
        }
        let [l, r, u, d] = arms;
        let mut stroke = |weight: u8, horizontal: bool, from: f64, to: f64| {
            if weight == 0 {
                return;
            }
            let (fixed, width) = if horizontal { (cy, weight) } else { (cx, weight) };
            let offsets: &[f64] = if weight == 3 { &[-1.5, 1.5] } else { &[0.0] };
            for o in offsets {
                let key = (color, if width == 3 { 1 } else { width });
                self.strokes.entry(key).or_default().push((horizontal, half(fixed + o), half(from), half(to)));
            }
        };
        // Arms meet at the centre; extend each by half a stroke so that
        // corners close.
        stroke(l, true, x0, cx + 0.5);
        stroke(r, true, cx - 0.5, x1);
        stroke(u, false, y0, cy + 0.5);
        stroke(d, false, cy - 0.5, y1);
    }

    fn svg(mut self, cols: u16, rows: u16, title: &str) -> String {
        let width = PAD * 2.0 + cols as f64 * CELL_W;
        let height = TITLE_H + rows as f64 * CELL_H + PAD;
        let mut s = String::new();
        writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             role=\"img\" aria-label=\"{t}\">",
            w = num(width),
            h = num(height),
            t = escape(title)
        )
        .unwrap();
        writeln!(s, "<title>{}</title>", escape(title)).unwrap();
        writeln!(
            s,
            "<style>text{{font-family:{FONTS};font-size:{}px;white-space:pre}}.b{{font-weight:bold}}\
             .i{{font-style:italic}}</style>",
            num(FONT_SIZE)
        )
        .unwrap();
        // The window: rounded, a title bar with three dots and the title.
        writeln!(
            s,
            "<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" rx=\"8\" fill=\"{DEFAULT_BG}\" stroke=\"{FRAME}\"/>",
            num(width - 1.0),
            num(height - 1.0)
        )
        .unwrap();
        writeln!(
            s,
            "<path d=\"M1 {b}V9a8 8 0 0 1 8-8H{r}a8 8 0 0 1 8 8V{b}Z\" fill=\"{TITLE_BG}\"/>",
            b = num(TITLE_H - 6.0),
            r = num(width - 9.0)
        )
        .unwrap();
        for (i, color) in ["#ff5f57", "#febc2e", "#28c840"].iter().enumerate() {
            writeln!(s, "<circle cx=\"{}\" cy=\"13\" r=\"6\" fill=\"{color}\"/>", 20 + 20 * i).unwrap();
        }
        writeln!(
            s,
            "<text x=\"{}\" y=\"17.5\" text-anchor=\"middle\" fill=\"#9d9d9d\" style=\"font-size:12px\">{}</text>",
            num(width / 2.0),
            escape(title)
        )
        .unwrap();
        for (x, y, cells, bg) in &self.backgrounds {
            writeln!(
                s,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{bg}\"/>",
                num(left(*x)),
                num(top(*y)),
                num(*cells as f64 * CELL_W),
                num(CELL_H)
            )
            .unwrap();
        }
        for b in &self.blocks {
            writeln!(s, "{b}").unwrap();
        }
        for ((color, weight), strokes) in std::mem::take(&mut self.strokes) {
            let mut d = String::new();
            for (horizontal, fixed, from, to) in merge(strokes) {
                let f = num(fixed as f64 / 2.0);
                if horizontal {
                    write!(d, "M{} {f}H{}", num(from as f64 / 2.0), num(to as f64 / 2.0)).unwrap();
                } else {
                    write!(d, "M{f} {}V{}", num(from as f64 / 2.0), num(to as f64 / 2.0)).unwrap();
                }
            }
            writeln!(s, "<path d=\"{d}\" stroke=\"{color}\" stroke-width=\"{weight}\" fill=\"none\"/>").unwrap();
        }
        for (color, curves) in &self.curves {
            writeln!(s, "<path d=\"{}\" stroke=\"{color}\" fill=\"none\"/>", curves.concat()).unwrap();
        }
        for (y, (x, n, c), dy) in &self.lines {
            writeln!(
                s,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"1\" fill=\"{c}\"/>",
                num(left(*x)),
                num(top(*y) + BASELINE + dy),
                num(*n as f64 * CELL_W)
            )
            .unwrap();
        }
        writeln!(s, "<g fill=\"{DEFAULT_FG}\">").unwrap();
        for t in &self.texts {
            writeln!(s, "{t}").unwrap();
        }
        writeln!(s, "</g>").unwrap();
        s.push_str("</svg>\n");
        s
    }
}

/// Strokes on one line that touch or overlap become one.
fn merge(mut strokes: Vec<Stroke>) -> Vec<Stroke> {
    strokes.sort();
    let mut out: Vec<Stroke> = Vec::new();
    for s in strokes {
        match out.last_mut() {
            Some(last) if last.0 == s.0 && last.1 == s.1 && s.2 <= last.3 => last.3 = last.3.max(s.3),
            _ => out.push(s),
        }
    }
    out
}

/// The buffer as an SVG document titled `title`.
pub fn render(buffer: &Buffer, title: &str) -> String {
    let area = buffer.area;
    let mut canvas = Canvas::default();
    for y in 0..area.height {
        let mut run: Option<Run> = None;
        // (x, cells, colour) of the background, underline and strike-through
        // runs being built on this row.
        let mut bg_run: Option<(u16, u16, Rgb)> = None;
        let mut under_run: Option<(u16, u16, Rgb)> = None;
        let mut strike_run: Option<(u16, u16, Rgb)> = None;
        let mut x = 0;
        while x < area.width {
            let cell = &buffer[(area.x + x, area.y + y)];
            let symbol = if cell.diff_option == CellDiffOption::Skip { " " } else { cell.symbol() };
            let width = match cell.diff_option {
                CellDiffOption::ForcedWidth(w) => w.get(),
                _ => Span::raw(symbol).width() as u16,
            };
            let width = width.clamp(1, area.width - x);
            let l = look(cell);
            extend(&mut bg_run, x, width, (l.bg != DEFAULT_BG).then_some(l.bg), |(x, n, c)| {
                canvas.backgrounds.push((x, y, n, c))
            });
            extend(&mut under_run, x, width, l.underline, |r| canvas.lines.push((y, r, 2.0)));
            extend(&mut strike_run, x, width, l.strike.then_some(l.fg), |r| canvas.lines.push((y, r, -5.0)));
            let g = if l.hidden { Glyph::Blank } else { glyph(symbol) };
            match g {
                Glyph::Blank => {
                    if let Some(r) = run.as_mut() {
                        r.spaces += width;
                    }
                }
                Glyph::Run(c) => {
                    let joins = run
                        .as_ref()
                        .is_some_and(|r| r.spaces < 2 && r.fg == l.fg && r.bold == l.bold && r.italic == l.italic);
                    if !joins {
                        canvas.flush(&mut run, y);
                        run = Some(Run {
                            x,
                            cells: 0,
                            text: String::new(),
                            fg: l.fg,
                            bold: l.bold,
                            italic: l.italic,
                            spaces: 0,
                        });
                    }
                    let r = run.as_mut().expect("a run");
                    for _ in 0..r.spaces {
                        r.text.push(' ');
                    }
                    r.cells += r.spaces + width;
                    r.spaces = 0;
                    r.text.push(c);
                }
                Glyph::Symbol(s) => {
                    canvas.flush(&mut run, y);
                    canvas.symbol(&s, x, width, y, l);
                }
                Glyph::Box { arms, round } => {
                    canvas.flush(&mut run, y);
                    canvas.box_arms(arms, round, x, y, l.fg);
                }
                Glyph::Block { rect: (bx, by, bw, bh), opacity } => {
                    canvas.flush(&mut run, y);
                    let alpha = if opacity < 1.0 { format!(" fill-opacity=\"{opacity}\"") } else { String::new() };
                    canvas.blocks.push(format!(
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{alpha}/>",
                        num(left(x) + bx * CELL_W),
                        num(top(y) + by * CELL_H),
                        num(bw * CELL_W),
                        num(bh * CELL_H),
                        l.fg
                    ));
                }
            }
            x += width;
        }
        canvas.flush(&mut run, y);
        if let Some((x, n, c)) = bg_run {
            canvas.backgrounds.push((x, y, n, c));
        }
        if let Some(r) = under_run {
            canvas.lines.push((y, r, 2.0));
        }
        if let Some(r) = strike_run {
            canvas.lines.push((y, r, -5.0));
        }
    }
    canvas.svg(area.width, area.height, title)
}

/// Grow the open run of `color` by `width` cells at `x`, or close it (`done`)
/// and open another when the colour changes.
fn extend(
    open: &mut Option<(u16, u16, Rgb)>,
    x: u16,
    width: u16,
    color: Option<Rgb>,
    mut done: impl FnMut((u16, u16, Rgb)),
) {
    match (open.as_mut(), color) {
        (Some(o), Some(c)) if o.2 == c => o.1 += width,
        (_, color) => {
            if let Some(o) = open.take() {
                done(o);
            }
            *open = color.map(|c| (x, width, c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    fn buffer(width: u16, lines: &[(&str, Style)]) -> Buffer {
        let mut b = Buffer::empty(Rect::new(0, 0, width, lines.len() as u16));
        for (y, (text, style)) in lines.iter().enumerate() {
            b.set_string(0, y as u16, text, *style);
        }
        b
    }

    #[test]
    fn same_style_text_is_one_run_and_escaped() {
        let svg = render(&buffer(20, &[("a <b> & c", Style::new())]), "t");
        assert!(svg.contains(">a &lt;b&gt; &amp; c</text>"), "{svg}");
        assert!(svg.contains("textLength=\"81\""), "9 cells: {svg}");
    }

    #[test]
    fn two_spaces_or_a_style_change_split_runs() {
        let mut b = buffer(20, &[("ab  cd", Style::new())]);
        b.set_string(6, 0, "ef", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD));
        let svg = render(&b, "t");
        assert!(svg.contains(">ab</text>") && svg.contains(">cd</text>"), "{svg}");
        assert!(svg.contains("fill=\"#cd3131\" class=\"b\">ef</text>"), "{svg}");
    }

    #[test]
    fn symbols_stand_alone_and_wide_ones_take_two_cells() {
        let svg = render(&buffer(10, &[("● 日x", Style::new())]), "t");
        // ● centred on cell 0; 日 on cells 2–3; x after it at cell 4.
        assert!(
            svg.contains(&format!(
                "x=\"{}\" y=\"{}\" text-anchor=\"middle\">●",
                num(PAD + 4.5),
                num(TITLE_H + BASELINE)
            )),
            "{svg}"
        );
        assert!(
            svg.contains(&format!(
                "x=\"{}\" y=\"{}\" text-anchor=\"middle\">日",
                num(PAD + 27.0),
                num(TITLE_H + BASELINE)
            )),
            "{svg}"
        );
        assert!(svg.contains(&format!("<text x=\"{}\"", num(PAD + 36.0))), "{svg}");
    }

    #[test]
    fn borders_are_merged_strokes() {
        let svg = render(&buffer(4, &[("┌──┐", Style::new()), ("└──┘", Style::new())]), "t");
        assert_eq!(svg.matches("<path d=").count(), 2, "the title bar and one path for the box: {svg}");
        // The top edge is one horizontal line from the corner's centre to the other's.
        let y = num(TITLE_H + CELL_H / 2.0);
        assert!(svg.contains(&format!("M{} {y}H{}", num(PAD + 4.0), num(PAD + 32.0))), "{svg}");
    }

    #[test]
    fn colours_reverse_dim_and_backgrounds() {
        assert_eq!(indexed(196), Rgb(255, 0, 0));
        assert_eq!(indexed(244), Rgb(128, 128, 128));
        assert_eq!(rgb(Color::Rgb(1, 2, 3)), Some(Rgb(1, 2, 3)));
        assert_eq!(rgb(Color::Reset), None);
        let b = buffer(10, &[("sel", Style::new().add_modifier(Modifier::REVERSED))]);
        let svg = render(&b, "t");
        assert!(svg.contains(&format!("height=\"19\" fill=\"{DEFAULT_FG}\"")), "reversed: light background {svg}");
        assert!(svg.contains(&format!("fill=\"{DEFAULT_BG}\">sel<")), "…dark text: {svg}");
    }

    #[test]
    fn the_same_buffer_gives_the_same_bytes() {
        let b = buffer(10, &[("x", Style::new().fg(Color::Indexed(33)))]);
        assert_eq!(render(&b, "t"), render(&b, "t"));
        assert!(!render(&b, "<&>").contains("<&>"));
    }
}
