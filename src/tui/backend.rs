//! A lean terminal backend: ratatui's diff, written with as few bytes as
//! the terminal needs. Over SSH every byte is latency, and at 100,000
//! accounts a scrolled list changes a cell or two on every row, so the cost
//! of a frame is mostly how the changes are addressed:
//! - the cursor moves by the shortest of an absolute position, a relative
//!   step (`ESC[nC`, `ESC[B`, backspaces, `ESC M`…) or a carriage return;
//! - colours are the 16-colour SGR codes (`ESC[32m`, not `ESC[38;5;2;49m`),
//!   and only what changed is set, in one SGR sequence;
//! - a frame is encoded twice, in ratatui's order (row by row) and grouped
//!   by pen (every cell of one colour, then the next), and the shorter is
//!   sent: a scrolled list's digits and markers, alternating colours on
//!   every row, cost one colour change each instead of two a row;
//! - a run of blanks is erased (`ESC[nX`, `ESC[K` to the end of the line)
//!   when that is shorter, and only where every terminal shows the same:
//!   the default background, nothing that shows on a blank;
//! - a frame with no changes writes nothing at all: no colour reset, and the
//!   cursor is hidden or shown only when that changes, so the idle console
//!   is silent.
//!
//! Everything but drawing (size, clearing) is crossterm's.

use std::io::{self, Write};

use crossterm::{QueueableCommand, cursor, terminal};
use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::{Cell, CellDiffOption};
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

/// The pen: the attributes the terminal will give the next printed cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    underline: Color,
    modifier: Modifier,
}

const PLAIN: Pen = Pen { fg: Color::Reset, bg: Color::Reset, underline: Color::Reset, modifier: Modifier::empty() };

impl Pen {
    fn of(cell: &Cell) -> Pen {
        Pen { fg: cell.fg, bg: cell.bg, underline: cell.underline_color, modifier: cell.modifier }
    }

    /// Whether a blank in this pen looks, on every terminal, like an erased
    /// cell: the default background and nothing drawn on a blank (erasing
    /// keeps the background only, on some terminals).
    fn erases(self) -> bool {
        self.bg == Color::Reset
            && !self.modifier.intersects(Modifier::REVERSED | Modifier::UNDERLINED | Modifier::CROSSED_OUT)
    }
}

/// What the terminal holds, as far as known: where its cursor is (unknown
/// at start, after a wide or last-column character — pending wrap — and
/// after a clear) and its pen (unknown until first set).
#[derive(Debug, Clone, Copy, PartialEq)]
struct State {
    at: Option<(u16, u16)>,
    pen: Option<Pen>,
}

/// A ratatui backend over any writer (the terminal, or a counter in the
/// benchmark).
pub struct LeanBackend<W: Write> {
    writer: W,
    /// The frame being encoded, written in one go; and the other encoding.
    out: Vec<u8>,
    other: Vec<u8>,
    state: State,
    screen: Screen,
    /// Whether the cursor is hidden; None until first set.
    hidden: Option<bool>,
    /// The terminal's size: fixed (tests, the benchmark), or as last asked.
    fixed: Option<Size>,
    columns: std::cell::Cell<u16>,
}

impl<W: Write> LeanBackend<W> {
    /// For the terminal: its size is asked of the terminal.
    pub fn new(writer: W) -> LeanBackend<W> {
        let columns = terminal::size().map(|(w, _)| w).unwrap_or(u16::MAX);
        LeanBackend::with_columns(writer, None, columns)
    }

    /// For a writer that is not a terminal, of a known size.
    pub fn with_size(writer: W, size: Size) -> LeanBackend<W> {
        LeanBackend::with_columns(writer, Some(size), size.width)
    }

    fn with_columns(writer: W, fixed: Option<Size>, columns: u16) -> LeanBackend<W> {
        LeanBackend {
            writer,
            out: Vec::with_capacity(4096),
            other: Vec::with_capacity(4096),
            state: State { at: None, pen: None },
            screen: Screen::default(),
            hidden: None,
            fixed,
            columns: std::cell::Cell::new(columns),
        }
    }

    pub fn writer(&self) -> &W {
        &self.writer
    }
}

/// What the terminal shows, as far as known: ratatui's frames, cell by cell
/// (None: unknown — before the first frame, after a partial clear).
#[derive(Debug, Default)]
struct Screen {
    width: u16,
    cells: Vec<Option<Cell>>,
}

impl Screen {
    fn get(&self, x: u16, y: u16) -> Option<&Cell> {
        self.cells.get(y as usize * self.width as usize + x as usize)?.as_ref()
    }

    fn set(&mut self, x: u16, y: u16, cell: &Cell) {
        let i = y as usize * self.width as usize + x as usize;
        // A wide character covers the cells after it, which ratatui does
        // not send: they show part of it, nothing that could be printed.
        let symbol = cell.symbol();
        let width = if symbol.len() == 1 { 1 } else { ratatui::text::Span::raw(symbol).width().max(1) };
        let end = (i + width).min((y as usize + 1) * self.width as usize).max(i + 1);
        if end > self.cells.len() {
            self.cells.resize(end, None);
        }
        self.cells[i] = Some(cell.clone());
        self.cells[i + 1..end].fill(None);
    }

    /// Forget every cell, or know every cell blank (after a clear).
    fn reset(&mut self, width: u16, blank: bool) {
        let len = self.cells.len();
        self.width = width;
        self.cells.clear();
        self.cells.resize(len, if blank { Some(Cell::default()) } else { None });
    }
}

/// One frame's encoding onto `out`, from the terminal's `state`; `screen`
/// holds what every cell shows once the frame is written.
struct Encoder<'a> {
    state: State,
    out: &'a mut Vec<u8>,
    columns: u16,
    screen: &'a Screen,
}

impl Encoder<'_> {
    /// Encode `cells` in the order given.
    fn encode(&mut self, cells: &[(u16, u16, &Cell)]) {
        let mut i = 0;
        while i < cells.len() {
            let (x, y, cell) = cells[i];
            // A run of blanks in one pen, each cell right after the last.
            let pen = Pen::of(cell);
            let run = if cell.symbol() == " " && pen.erases() {
                cells[i..]
                    .iter()
                    .enumerate()
                    .take_while(|&(k, &(cx, cy, c))| {
                        cy == y && cx as usize == x as usize + k && c.symbol() == " " && Pen::of(c) == pen
                    })
                    .count()
            } else {
                1
            };
            if run > 1 && self.erase(cells, i, run) {
                i += run;
                continue;
            }
            self.put(x, y, cell);
            i += 1;
        }
    }

    /// Erase the run of `n` blanks starting at `cells[i]` when that is
    /// shorter than printing them: `ESC[K` when the run reaches the end of
    /// the line, else `ESC[nX`, whose cursor stays put (the move to the next
    /// cell is counted). Returns whether it did.
    fn erase(&mut self, cells: &[(u16, u16, &Cell)], i: usize, n: usize) -> bool {
        let (x, y, cell) = cells[i];
        let end = x as usize + n;
        let to_eol = end >= self.columns as usize;
        let sequence = if to_eol { "\x1b[K".to_string() } else { format!("\x1b[{n}X") };
        // Printing leaves the cursor after the run (pending wrap at the end
        // of the line); erasing leaves it at the run's start.
        let next = cells.get(i + n).map(|&(nx, ny, _)| (nx, ny));
        let after_print = if to_eol { None } else { Some((end as u16, y)) };
        let cost = |from: Option<(u16, u16)>| next.map_or(0, |(nx, ny)| step(from, nx, ny).len());
        if sequence.len() + cost(Some((x, y))) >= n + cost(after_print) {
            return false;
        }
        self.move_to(x, y);
        pen_for(cell, &mut self.state, self.out);
        self.out.extend_from_slice(sequence.as_bytes());
        true
    }

    fn put(&mut self, x: u16, y: u16, cell: &Cell) {
        self.move_to(x, y);
        pen_for(cell, &mut self.state, self.out);
        let symbol = cell.symbol();
        self.out.extend_from_slice(symbol.as_bytes());
        let width = if symbol.len() == 1 { 1 } else { ratatui::text::Span::raw(symbol).width() };
        // Past the last column the cursor waits to wrap; a wide character's
        // width is the terminal's business: either way, start afresh.
        self.state.at = if width == 1 && x + 1 < self.columns { Some((x + 1, y)) } else { None };
    }

    /// Move the cursor to `(x, y)` by the shortest sequence — or, a few
    /// columns on along the same line, by printing again what the cells
    /// between show, where the pen in force shows them the same.
    fn move_to(&mut self, x: u16, y: u16) {
        if self.state.at == Some((x, y)) {
            return;
        }
        let step = step(self.state.at, x, y);
        if let (Some((cx, cy)), Some(pen)) = (self.state.at, self.state.pen)
            && cy == y
            && cx < x
            && ((x - cx) as usize) < step.len()
        {
            let again: Option<Vec<u8>> = (cx..x)
                .map(|gx| {
                    let c = self.screen.get(gx, y)?;
                    let alike = Pen::of(c) == pen || (c.symbol() == " " && pen.erases() && Pen::of(c).erases());
                    (c.symbol().len() == 1 && c.diff_option == CellDiffOption::None && alike)
                        .then(|| c.symbol().as_bytes()[0])
                })
                .collect();
            if let Some(again) = again {
                self.out.extend_from_slice(&again);
                self.state.at = Some((x, y));
                return;
            }
        }
        self.out.extend_from_slice(step.as_bytes());
        self.state.at = Some((x, y));
    }
}

/// The shortest sequence from `from` (unknown: None) to `(x, y)`: an
/// absolute position, a relative step, or a carriage return and a step.
/// Only moves that never scroll nor wrap: a line feed goes down to a row
/// on screen, `ESC M` up from a row below the top; backspaces are used only
/// from a known column.
fn step(from: Option<(u16, u16)>, x: u16, y: u16) -> String {
    let absolute = if x == 0 { format!("\x1b[{}H", y + 1) } else { format!("\x1b[{};{}H", y + 1, x + 1) };
    let Some((cx, cy)) = from else { return absolute };
    if (cx, cy) == (x, y) {
        return String::new();
    }
    let vertical = match y.cmp(&cy) {
        std::cmp::Ordering::Equal => String::new(),
        // The terminal is in raw mode (no output processing): a line feed
        // only moves down, and never scrolls from above the last row.
        std::cmp::Ordering::Greater if y - cy <= 2 => "\n".repeat((y - cy) as usize),
        std::cmp::Ordering::Greater => csi(y - cy, 'B'),
        std::cmp::Ordering::Less if cy - y == 1 => "\x1bM".to_string(),
        std::cmp::Ordering::Less => csi(cy - y, 'A'),
    };
    let horizontal = match x.cmp(&cx) {
        std::cmp::Ordering::Equal => String::new(),
        std::cmp::Ordering::Greater => csi(x - cx, 'C'),
        std::cmp::Ordering::Less if cx - x <= 3 => "\x08".repeat((cx - x) as usize),
        std::cmp::Ordering::Less => csi(cx - x, 'D'),
    };
    let relative = vertical.clone() + &horizontal;
    let from_margin = if x == 0 { format!("{vertical}\r") } else { format!("{vertical}\r{}", csi(x, 'C')) };
    [absolute, relative, from_margin].into_iter().min_by_key(String::len).unwrap_or_default()
}

/// Set the pen for `cell` in one SGR sequence, naming only what changed.
fn pen_for(cell: &Cell, state: &mut State, out: &mut Vec<u8>) {
    let want = Pen::of(cell);
    let mut params: Vec<String> = Vec::new();
    let have = match state.pen {
        Some(have) if have == want => return,
        Some(have) => have,
        None => {
            params.push("0".into());
            PLAIN
        }
    };
    let mut have = have;
    let removed = have.modifier - want.modifier;
    if !removed.is_empty() {
        if want.modifier.is_empty() && params.is_empty() {
            // Everything off: one reset, colours included.
            params.push("0".into());
            have = PLAIN;
        } else {
            // 22 ends bold and dim together: the survivor is set again.
            if removed.intersects(Modifier::BOLD | Modifier::DIM) {
                params.push("22".into());
                have.modifier.remove(Modifier::BOLD | Modifier::DIM);
            }
            for (m, code) in [
                (Modifier::ITALIC, "23"),
                (Modifier::UNDERLINED, "24"),
                (Modifier::SLOW_BLINK | Modifier::RAPID_BLINK, "25"),
                (Modifier::REVERSED, "27"),
                (Modifier::HIDDEN, "28"),
                (Modifier::CROSSED_OUT, "29"),
            ] {
                if removed.intersects(m) {
                    params.push(code.into());
                    have.modifier.remove(m);
                }
            }
        }
    }
    for (m, code) in [
        (Modifier::BOLD, "1"),
        (Modifier::DIM, "2"),
        (Modifier::ITALIC, "3"),
        (Modifier::UNDERLINED, "4"),
        (Modifier::SLOW_BLINK, "5"),
        (Modifier::RAPID_BLINK, "6"),
        (Modifier::REVERSED, "7"),
        (Modifier::HIDDEN, "8"),
        (Modifier::CROSSED_OUT, "9"),
    ] {
        if want.modifier.contains(m) && !have.modifier.contains(m) {
            params.push(code.into());
        }
    }
    if want.fg != have.fg {
        params.push(color(want.fg, Layer::Fg));
    }
    if want.bg != have.bg {
        params.push(color(want.bg, Layer::Bg));
    }
    if want.underline != have.underline {
        params.push(color(want.underline, Layer::Underline));
    }
    if !params.is_empty() {
        out.extend_from_slice(format!("\x1b[{}m", params.join(";")).as_bytes());
    }
    state.pen = Some(want);
}

/// The cells grouped by pen, the terminal's pen first, then each in the
/// order it first appears; within a pen, in the order given.
fn by_pen<'a>(cells: &[(u16, u16, &'a Cell)], first: Option<Pen>) -> Vec<(u16, u16, &'a Cell)> {
    let mut pens: Vec<Pen> = first.into_iter().collect();
    let mut rank = Vec::with_capacity(cells.len());
    for &(_, _, cell) in cells {
        let pen = Pen::of(cell);
        let r = match pens.iter().position(|&p| p == pen) {
            Some(r) => r,
            None => {
                pens.push(pen);
                pens.len() - 1
            }
        };
        rank.push(r);
    }
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&i| rank[i]);
    order.into_iter().map(|i| cells[i]).collect()
}

/// `ESC[nX`, with the count left out when it is 1.
fn csi(n: u16, letter: char) -> String {
    if n == 1 { format!("\x1b[{letter}") } else { format!("\x1b[{n}{letter}") }
}

#[derive(Clone, Copy)]
enum Layer {
    Fg,
    Bg,
    Underline,
}

/// A colour's SGR parameters for one layer: the 16 named colours by their
/// short codes (30–37, 90–97 and +10 for the background), others by index
/// or RGB.
fn color(c: Color, layer: Layer) -> String {
    let palette = match c {
        Color::Reset => {
            return match layer {
                Layer::Fg => "39",
                Layer::Bg => "49",
                Layer::Underline => "59",
            }
            .into();
        }
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Indexed(i) => i,
        Color::Rgb(r, g, b) => {
            let base = match layer {
                Layer::Fg => 38,
                Layer::Bg => 48,
                Layer::Underline => 58,
            };
            return format!("{base};2;{r};{g};{b}");
        }
    };
    let indexed = matches!(c, Color::Indexed(_));
    match layer {
        Layer::Fg if !indexed && palette < 8 => (30 + palette).to_string(),
        Layer::Fg if !indexed => (90 + palette - 8).to_string(),
        Layer::Bg if !indexed && palette < 8 => (40 + palette).to_string(),
        Layer::Bg if !indexed => (100 + palette - 8).to_string(),
        Layer::Fg => format!("38;5;{palette}"),
        Layer::Bg => format!("48;5;{palette}"),
        Layer::Underline => format!("58;5;{palette}"),
    }
}

impl<W: Write> Backend for LeanBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let cells: Vec<(u16, u16, &Cell)> = content.collect();
        if cells.is_empty() {
            return Ok(());
        }
        let columns = self.columns.get();
        if self.screen.width != columns {
            self.screen.reset(columns, false);
        }
        for &(x, y, cell) in &cells {
            self.screen.set(x, y, cell);
        }
        let mut in_order = Encoder { state: self.state, out: &mut self.out, columns, screen: &self.screen };
        in_order.encode(&cells);
        let in_order = in_order.state;
        let grouped = by_pen(&cells, self.state.pen);
        let mut by_colour = Encoder { state: self.state, out: &mut self.other, columns, screen: &self.screen };
        by_colour.encode(&grouped);
        let by_colour = by_colour.state;
        self.state = if self.other.len() < self.out.len() {
            std::mem::swap(&mut self.out, &mut self.other);
            by_colour
        } else {
            in_order
        };
        self.other.clear();
        // The pen is left as it is: the next frame starts from it, and
        // `restore` resets the terminal on the way out.
        if !self.out.is_empty() {
            self.writer.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.hidden != Some(true) {
            self.writer.queue(cursor::Hide)?;
            self.hidden = Some(true);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        if self.hidden != Some(false) {
            self.writer.queue(cursor::Show)?;
            self.hidden = Some(false);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        let (x, y) = cursor::position()?;
        self.state.at = Some((x, y));
        Ok(Position { x, y })
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let p = position.into();
        let mut cursor =
            Encoder { state: self.state, out: &mut self.out, columns: self.columns.get(), screen: &self.screen };
        cursor.move_to(p.x, p.y);
        self.state = cursor.state;
        self.writer.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    fn clear(&mut self) -> io::Result<()> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        // Erasing paints with the current background: start plain.
        if self.state.pen != Some(PLAIN) {
            self.writer.write_all(b"\x1b[0m")?;
            self.state.pen = Some(PLAIN);
        }
        self.writer.queue(terminal::Clear(match clear_type {
            ClearType::All => terminal::ClearType::All,
            ClearType::AfterCursor => terminal::ClearType::FromCursorDown,
            ClearType::BeforeCursor => terminal::ClearType::FromCursorUp,
            ClearType::CurrentLine => terminal::ClearType::CurrentLine,
            ClearType::UntilNewLine => terminal::ClearType::UntilNewLine,
        }))?;
        // After a clear (ratatui's, on every resize) the terminal may have
        // moved or clamped the cursor: the next move is absolute.
        self.state.at = None;
        // What the cells show: blank after a whole clear, else unknown.
        self.screen.reset(self.columns.get(), clear_type == ClearType::All);
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        if let Some(size) = self.fixed {
            return Ok(size);
        }
        let (width, height) = terminal::size()?;
        self.columns.set(width);
        Ok(Size { width, height })
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        if let Some(size) = self.fixed {
            return Ok(WindowSize { columns_rows: size, pixels: Size::default() });
        }
        let crossterm::terminal::WindowSize { columns, rows, width, height } = terminal::window_size()?;
        Ok(WindowSize { columns_rows: Size { width: columns, height: rows }, pixels: Size { width, height } })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Rect;
    use ratatui::style::{Style, Stylize};
    use ratatui::text::{Line, Span};
    use ratatui::widgets::Paragraph;
    use ratatui::{Terminal, TerminalOptions, Viewport};

    use super::*;

    /// Frames drawn through the lean backend, read back by a terminal
    /// emulator, show exactly what ratatui drew — text and colours — frame
    /// after frame (scrolls, highlights, wide symbols, the last column).
    #[test]
    fn what_the_terminal_shows_is_what_was_drawn() {
        let (w, h) = (30u16, 8u16);
        let viewport = Viewport::Fixed(Rect::new(0, 0, w, h));
        let backend = LeanBackend::with_size(Vec::new(), Size { width: w, height: h });
        let mut terminal = Terminal::with_options(backend, TerminalOptions { viewport }).unwrap();
        let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = vt100::Parser::new(nz(h), nz(w), 0);
        let mut fed = 0;
        for frame in 0..12usize {
            let completed = terminal
                .draw(|f| {
                    let lines: Vec<Line> = (0..h as usize)
                        .map(|row| {
                            let n = frame + row;
                            let mut line = Line::from(vec![
                                Span::raw(format!("xl-{n:06} ")),
                                Span::styled("●", Style::new().green()),
                                Span::raw(" "),
                                Span::styled(if n % 3 == 0 { "✗" } else { "○" }, Style::new().red().bold()),
                                Span::raw(if n % 4 == 0 { " ①ab" } else { " 日本" }),
                                Span::styled(format!("{:>9}", n % 7), Style::new().on_blue().italic()),
                            ]);
                            // Now and then a short line: the rest of the
                            // row turns blank (erased, not printed).
                            if (frame + 2 * row) % 5 == 0 {
                                line = Line::from(Span::styled("short", Style::new().red()));
                            }
                            if row == frame % h as usize {
                                line = line.reversed();
                            }
                            line
                        })
                        .collect();
                    f.render_widget(Paragraph::new(lines), f.area());
                })
                .unwrap()
                .buffer
                .clone();
            let out = terminal.backend().writer();
            parser.process(&out[fed..]);
            fed = out.len();
            let screen = parser.screen();
            for y in 0..h {
                let want: String = (0..w)
                    .map(|x| completed[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .replace("日 ", "日")
                    .replace("本 ", "本");
                assert_eq!(screen.rows(0, w).nth(y as usize).unwrap().trim_end(), want.trim_end(), "frame {frame}");
                for x in 0..w {
                    let (cell, got) = (&completed[(x, y)], screen.cell(y, x).unwrap());
                    // A blank on the default background shows nothing of
                    // its colour or boldness: a run of them may be erased or
                    // printed in the pen in force.
                    if got.is_wide_continuation() {
                        continue;
                    }
                    let bg = match cell.bg {
                        Color::Reset => vt100::Color::Default,
                        Color::Blue => vt100::Color::Idx(4),
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(got.bgcolor(), bg, "frame {frame} ({x},{y})");
                    if cell.symbol() == " " && Pen::of(cell).erases() {
                        continue;
                    }
                    assert_eq!(cell.modifier.contains(Modifier::REVERSED), got.inverse(), "frame {frame} ({x},{y})");
                    assert_eq!(cell.modifier.contains(Modifier::BOLD), got.bold(), "frame {frame} ({x},{y})");
                    let fg = match cell.fg {
                        Color::Reset => vt100::Color::Default,
                        Color::Green => vt100::Color::Idx(2),
                        Color::Red => vt100::Color::Idx(1),
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(got.fgcolor(), fg, "frame {frame} ({x},{y})");
                }
            }
        }
        // Nothing changed: nothing written.
        let before = terminal.backend().writer().len();
        terminal.draw(|_| {}).unwrap();
        terminal.draw(|_| {}).unwrap();
        let after = terminal.backend().writer().len();
        assert!(after > before, "an empty frame differs from the last one");
        terminal.draw(|_| {}).unwrap();
        assert_eq!(terminal.backend().writer().len(), after, "an unchanged frame writes nothing");
    }
}
