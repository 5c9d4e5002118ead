//! The pure heart of keyfall: the integration-type registry, secrets and their
//! masks, fallback resolution, permission checks and safe text. No I/O, no
//! async, no clock, no environment: bad data becomes a verdict, never an `Err`.

pub mod audit;
pub mod blast;
pub mod change;
pub mod diff;
pub mod directory;
pub mod history;
pub mod json;
pub mod lint;
pub mod merge;
pub mod model;
pub mod permissions;
pub mod registry;
pub mod resolve;
pub mod restore;
pub mod secret;
pub mod text;

pub use model::{Account, AccountStatus, AiFunction, ChainEntry, Policy, Role, Setting, User, Withheld};
pub use resolve::{Hop, Resolution, Rules, Step, Verdict};
pub use secret::Secret;
