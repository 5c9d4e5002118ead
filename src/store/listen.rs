//! Change events: the audit triggers `NOTIFY keyfall_changes` with ids only,
//! for writes from any client. `listen` forwards them, and says when the
//! connection is lost and when it is back (so the console can resync what it
//! shows: notifications sent while disconnected are gone).

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::Store;
use crate::domain::change::Change;

pub const CHANNEL: &str = "keyfall_changes";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Change(Change),
    /// The listening connection is gone; retrying.
    Lost(String),
    /// Listening again after a loss: anything may have changed meanwhile.
    Resumed,
}

/// Listen until `send` returns false (the receiver is gone). Reconnects with
/// backoff (0.5 s doubling to 10 s).
pub async fn listen(store: Store, send: impl Fn(Event) -> bool) {
    let mut lost = false;
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut listener = match subscribe(&store).await {
            Ok(l) => l,
            Err(e) => {
                if !lost && !send(Event::Lost(e.to_string())) {
                    return;
                }
                lost = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if lost {
            backoff = Duration::from_millis(500);
            if !send(Event::Resumed) {
                return;
            }
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(note)) => {
                    let Ok(change) = serde_json::from_str::<Change>(note.payload()) else {
                        tracing::warn!("unreadable change notice ignored");
                        continue;
                    };
                    if !send(Event::Change(change)) {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    if !send(Event::Lost("the listening connection was closed".into())) {
                        return;
                    }
                    lost = true;
                    break;
                }
            }
        }
    }
}

async fn subscribe(store: &Store) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(store.pool()).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
