//! keyfall: see which key every tenant really uses and why, fix wrong
//! configs safely, explain permissions, and prove who changed what.
//! Layers, bottom up: `domain` (pure), `store` (SQL), `app` (the console's
//! Model/Msg/Cmd), `tui` (its runtime), `cli` (commands): ARCHITECTURE.md.

pub mod app;
pub mod cli;
pub mod config;
pub mod connection;
pub mod domain;
pub mod preview;
pub mod store;
pub mod tui;

#[cfg(test)]
mod layers;
