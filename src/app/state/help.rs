//! Help's state (`help` has its keys and view).

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HelpView {
    /// The first line shown.
    pub scroll: usize,
}

/// One line of help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpLine {
    Heading(&'static str),
    Key(String, &'static str),
    Text(&'static str),
    Blank,
}
