//! A lean terminal backend: ratatui's diff, written with as few bytes as
//! the terminal needs. Over SSH every byte is latency, and at 100,000
//! accounts a scrolled list changes a cell or two on every row, so the cost
//! of a frame is mostly how the changes are addressed:
//! - the cursor moves by the shortest of an absolute position, a relative
//!   step (`ESC[nC`, `ESC[nB`…) or a carriage return;
//! - colours are the 16-colour SGR codes (`ESC[32m`, not `ESC[38;5;2;49m`),
//!   and only what changed is set, in one SGR sequence;
//! - a frame with no changes writes nothing at all: no colour reset, and the
//!   cursor is hidden or shown only when that changes, so the idle console
//!   is silent.
//!
//! Everything but drawing (size, clearing) is crossterm's.

use std::io::{self, Write};

use crossterm::{QueueableCommand, cursor, terminal};
use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::Cell;
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

/// A ratatui backend over any writer (the terminal, or a counter in the
/// benchmark).
pub struct LeanBackend<W: Write> {
    writer: W,
    /// The frame being encoded, written in one go.
    out: Vec<u8>,
    /// Where the terminal's cursor is, when known. Unknown at start, after
    /// a wide or last-column character (pending wrap), after a clear.
    at: Option<(u16, u16)>,
    /// The pen as the terminal has it; None until first set.
    pen: Option<Pen>,
    /// Whether the cursor is hidden; None until first set.
    hidden: Option<bool>,
    /// The terminal's size: fixed (tests, the benchmark), or as last asked.
    fixed: Option<Size>,
    columns: std::cell::Cell<u16>,
}

impl<W: Write> LeanBackend<W> {
    /// For the terminal: its size is asked of the terminal.
    pub fn new(writer: W) -> LeanBackend<W> {
        let columns = std::cell::Cell::new(terminal::size().map(|(w, _)| w).unwrap_or(u16::MAX));
        LeanBackend { writer, out: Vec::with_capacity(4096), at: None, pen: None, hidden: None, fixed: None, columns }
    }

    /// For a writer that is not a terminal, of a known size.
    pub fn with_size(writer: W, size: Size) -> LeanBackend<W> {
        let columns = std::cell::Cell::new(size.width);
        LeanBackend {
            writer,
            out: Vec::with_capacity(4096),
            at: None,
            pen: None,
            hidden: None,
            fixed: Some(size),
            columns,
        }
    }

    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// Move the cursor to `(x, y)` by the shortest sequence.
    fn move_to(&mut self, x: u16, y: u16) {
        if self.at == Some((x, y)) {
            return;
        }
        let absolute = if x == 0 { format!("\x1b[{}H", y + 1) } else { format!("\x1b[{};{}H", y + 1, x + 1) };
        let best = match self.at {
            Some((cx, cy)) => {
                let vertical = match y.cmp(&cy) {
                    std::cmp::Ordering::Equal => String::new(),
                    std::cmp::Ordering::Greater => step(y - cy, 'B'),
                    std::cmp::Ordering::Less => step(cy - y, 'A'),
                };
                let horizontal = match x.cmp(&cx) {
                    std::cmp::Ordering::Equal => String::new(),
                    std::cmp::Ordering::Greater => step(x - cx, 'C'),
                    std::cmp::Ordering::Less => step(cx - x, 'D'),
                };
                let relative = vertical.clone() + &horizontal;
                let from_margin =
                    if x == 0 { format!("{vertical}\r") } else { format!("{vertical}\r{}", step(x, 'C')) };
                [absolute, relative, from_margin].into_iter().min_by_key(String::len).unwrap_or_default()
            }
            None => absolute,
        };
        self.out.extend_from_slice(best.as_bytes());
        self.at = Some((x, y));
    }

    /// Set the pen for `cell` in one SGR sequence, naming only what changed.
    fn pen_for(&mut self, cell: &Cell) {
        let want = Pen { fg: cell.fg, bg: cell.bg, underline: cell.underline_color, modifier: cell.modifier };
        let mut params: Vec<String> = Vec::new();
        let have = match self.pen {
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
            self.out.extend_from_slice(format!("\x1b[{}m", params.join(";")).as_bytes());
        }
        self.pen = Some(want);
    }

    fn put(&mut self, x: u16, y: u16, cell: &Cell) {
        self.move_to(x, y);
        self.pen_for(cell);
        let symbol = cell.symbol();
        self.out.extend_from_slice(symbol.as_bytes());
        let width = if symbol.len() == 1 { 1 } else { ratatui::text::Span::raw(symbol).width() };
        let columns = self.columns.get();
        // Past the last column the cursor waits to wrap; a wide character's
        // width is the terminal's business: either way, start afresh.
        self.at = if width == 1 && x + 1 < columns { Some((x + 1, y)) } else { None };
    }
}

/// `ESC[nX`, with the count left out when it is 1.
fn step(n: u16, letter: char) -> String {
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
        for (x, y, cell) in content {
            self.put(x, y, cell);
        }
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
        self.at = Some((x, y));
        Ok(Position { x, y })
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let p = position.into();
        self.move_to(p.x, p.y);
        self.writer.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    fn clear(&mut self) -> io::Result<()> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        // Erasing paints with the current background: start plain.
        if self.pen != Some(PLAIN) {
            self.writer.write_all(b"\x1b[0m")?;
            self.pen = Some(PLAIN);
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
        self.at = None;
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
                    if got.is_wide_continuation() {
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
