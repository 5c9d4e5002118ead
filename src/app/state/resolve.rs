//! The resolve-as panel's state (`resolve_panel` has its keys and view).

use crate::domain::directory::SubjectData;
use crate::domain::resolve::Resolution;

/// The resolve-as panel.
#[derive(Debug, Default)]
pub struct ResolvePanel {
    pub email: Option<String>,
    pub function: Option<String>,
    pub subject: Option<SubjectData>,
    pub resolution: Option<Resolution>,
    /// Show the permission checks instead of the trace.
    pub show_permissions: bool,
    pub scroll: u16,
}
