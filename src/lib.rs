//! keyfall: see which key every tenant really uses and why, fix wrong
//! configs safely, explain permissions, and prove who changed what.
//! Layers: `domain` (pure), `store` (SQL), `cli` (commands), `config`.

pub mod app;
pub mod cli;
pub mod config;
pub mod connection;
pub mod domain;
pub mod preview;
pub mod store;
pub mod tui;
