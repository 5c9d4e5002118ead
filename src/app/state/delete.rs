//! The delete dialog's state (`delete` has its keys and view).

use crate::domain::change::ImpactRow;

/// "Delete this override?" — Cancel is focused until moved.
#[derive(Debug)]
pub struct DeleteDialog {
    pub account: String,
    pub integration_type: String,
    pub version: i64,
    pub delete_focused: bool,
    /// The delete asked for, once confirmed.
    pub request: Option<u64>,
    /// Who resolves differently once it is gone: the preview's request
    /// (0 once it failed), then its answer.
    pub preview: u64,
    pub impact: Option<Vec<ImpactRow>>,
}
