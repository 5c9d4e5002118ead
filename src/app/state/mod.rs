//! Each screen's own state, at the bottom of `app/` with the model that
//! holds it: plain data and the methods that need nothing else. The
//! screens' keys and views, in the middle (`app::admin`, `app::audit`, …),
//! take it; nothing here imports a screen, the model or a router.

pub mod access;
pub mod admin;
pub mod audit;
pub mod connection_test;
pub mod delete;
pub mod editor;
pub mod endpoint;
pub mod help;
pub mod lint;
pub mod live;
pub mod main;
pub mod messages;
pub mod mouse;
pub mod palette;
pub mod picker;
pub mod resolve;
pub mod reveal;
pub mod time_travel;
