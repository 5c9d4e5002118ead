//! The editor's keys (`keys`) and view (`view`); its state, the form and
//! where a save stands, is `state::editor`, with the model.

pub(super) mod keys;
pub mod view;

pub use super::state::editor::*;
