//! The main screen's own state (`main_screen` has its keys and view).

/// The main screen's own state: which pane has the keys, the tab shown,
/// the setting pane's scroll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainState {
    pub focus: Pane,
    /// The integration-type tab shown.
    pub tab: usize,
    /// First line of the setting pane shown.
    pub setting_scroll: u16,
}

impl Default for MainState {
    fn default() -> Self {
        MainState { focus: Pane::Accounts, tab: 0, setting_scroll: 0 }
    }
}

/// The main screen's panes, in the order tab visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Accounts,
    Setting,
    Resolve,
}

impl Pane {
    pub(in crate::app) fn next(self) -> Pane {
        match self {
            Pane::Accounts => Pane::Setting,
            Pane::Setting => Pane::Resolve,
            Pane::Resolve => Pane::Accounts,
        }
    }

    pub(in crate::app) fn prev(self) -> Pane {
        self.next().next()
    }
}
