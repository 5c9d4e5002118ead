//! The audit view's state (`audit` has its keys and view).

use ratatui::layout::Rect;

use crate::domain::Account;
use crate::domain::audit::AuditEntry;

#[derive(Debug)]
pub struct AuditView {
    pub account: Account,
    pub integration_type: String,
    pub entries: Vec<AuditEntry>,
    pub selected: usize,
    pub request: u64,
    pub loading: bool,
    /// Why the entries could not be loaded (shown instead of "loading…").
    pub error: Option<String>,
    /// Where the list was last drawn, for the mouse (`click`).
    pub drawn: std::cell::RefCell<Drawn>,
}

/// The audit list as last drawn: its area, the first line shown, and the
/// entry each line belongs to.
#[derive(Debug, Default)]
pub struct Drawn {
    pub(in crate::app) area: Rect,
    pub(in crate::app) scroll: usize,
    pub(in crate::app) entry_of_line: Vec<Option<usize>>,
}
