//! The past, purely (issue 23): when an `--at` moment is (`3 days ago`,
//! `yesterday 14:00`, an ISO time, `#812`), whether keyfall's history
//! covers it (where history begins, the gaps), and the world as it was,
//! rebuilt from the present by undoing every recorded change after the
//! moment, newest first. The clock is passed in; nothing here reads it.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;

use super::model::{Account, AccountStatus, Policy, Role, Setting, User, Withheld};
use super::resolve::Snapshot;
use super::secret::{MASK, is_fingerprint};

/// A moment as the operator names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// A time: every change recorded after it is undone.
    At(DateTime<Utc>),
    /// The moment just before audit entry `#N`: it and every later one undone.
    BeforeEntry(i64),
}

/// Read `--at`: `#812`; an ISO time (`2026-12-08T09:14:00Z`, `2026-12-08
/// 09:14`, `2026-12-08`; without an offset it is UTC); `now`; `today
/// 09:30`, `yesterday`, `yesterday 14:00` (UTC days); relative, `3 days
/// ago`, `2h ago`, `90 min ago`, `1 week ago`.
pub fn parse_moment(text: &str, now: DateTime<Utc>) -> Result<Moment, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let bad = || {
        format!(
            "cannot read {:?} as a moment: give an ISO time (2026-12-08 09:14, UTC unless it says), \
             `3 days ago`, `2h ago`, `yesterday 14:00`, or an audit entry `#812`",
            super::text::visible_short(t, 60)
        )
    };
    if let Some(n) = lower.strip_prefix('#') {
        return match n.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Moment::BeforeEntry(id)),
            _ => Err(bad()),
        };
    }
    if lower == "now" {
        return Ok(Moment::At(now));
    }
    for (word, days) in [("today", 0), ("yesterday", 1)] {
        if let Some(rest) = lower.strip_prefix(word) {
            let day = now.date_naive() - Duration::days(days);
            let rest = rest.trim();
            let time = if rest.is_empty() { NaiveTime::MIN } else { clock(rest).ok_or_else(bad)? };
            return Ok(Moment::At(Utc.from_utc_datetime(&day.and_time(time))));
        }
    }
    if let Some(rest) = lower.strip_suffix("ago") {
        let span = span(rest.trim()).ok_or_else(bad)?;
        return now.checked_sub_signed(span).map(Moment::At).ok_or_else(bad);
    }
    iso(t).map(Moment::At).ok_or_else(bad)
}

/// `14:00`, `14:00:30`.
fn clock(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M")).ok()
}

/// `3 days`, `2h`, `90 min`, `1 week`, `45s`.
fn span(s: &str) -> Option<Duration> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: i64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim();
    let seconds = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return None,
    };
    Duration::try_seconds(n.checked_mul(seconds)?)
}

fn iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M%#z", "%Y-%m-%dT%H:%M%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)))
}

/// Where the rebuilt world stands: every recorded change at or after it is
/// undone. `entry` is set for `#N` (changes with id ≥ N are undone);
/// otherwise changes recorded after `at` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cut {
    pub at: DateTime<Utc>,
    pub entry: Option<i64>,
}

impl Cut {
    /// Whether the audit entry `id`, recorded `at`, lies after the cut.
    pub fn undoes(&self, id: i64, at: DateTime<Utc>) -> bool {
        match self.entry {
            Some(n) => id >= n,
            None => at > self.at,
        }
    }

    /// "2026-12-08 09:14:00 UTC" or "just before #812 (2026-12-08 09:14:00 UTC)".
    pub fn label(&self) -> String {
        match self.entry {
            Some(n) => format!("just before #{n} ({})", stamp(self.at)),
            None => stamp(self.at),
        }
    }
}

pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// One of the audit rows that say where history begins or has a hole.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub table: String,
    pub after: Option<Value>,
}

/// Where history begins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Start {
    pub at: DateTime<Utc>,
    pub id: i64,
    /// `attach` or `migrate`.
    pub why: String,
}

/// A stretch the log cannot vouch for: from the entry that opened it to
/// the one that closed it (`None`: still open). A single failed capture
/// or a truncate is a gap of one entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub from_id: i64,
    pub to: Option<DateTime<Utc>>,
    pub to_id: Option<i64>,
    pub why: String,
}

impl Gap {
    pub fn describe(&self) -> String {
        match self.to {
            Some(to) if self.to_id == Some(self.from_id) => {
                format!("{} at {} (#{})", self.why, stamp(to), self.from_id)
            }
            Some(to) => format!("{} from {} to {}", self.why, stamp(self.from), stamp(to)),
            None => format!("{} since {}", self.why, stamp(self.from)),
        }
    }
}

/// What the log covers.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Window {
    pub start: Option<Start>,
    pub gaps: Vec<Gap>,
}

impl Window {
    /// From the marks, in id order.
    pub fn from_marks(marks: &[Mark]) -> Window {
        let mut window = Window::default();
        let mut open: Option<Gap> = None;
        for m in marks {
            let point = |why: String| Gap { from: m.at, from_id: m.id, to: Some(m.at), to_id: Some(m.id), why };
            match (m.table.as_str(), m.action.as_str()) {
                ("keyfall", "history_start") if window.start.is_none() => {
                    let why = m.after.as_ref().and_then(|a| a.get("why")).and_then(Value::as_str).unwrap_or("attach");
                    window.start = Some(Start { at: m.at, id: m.id, why: why.to_string() });
                }
                ("keyfall", "detach") => {
                    open.get_or_insert(Gap {
                        from: m.at,
                        from_id: m.id,
                        to: None,
                        to_id: None,
                        why: "detached".into(),
                    });
                }
                ("keyfall", "capture_disabled") => {
                    open.get_or_insert(Gap {
                        from: m.at,
                        from_id: m.id,
                        to: None,
                        to_id: None,
                        why: "capture was off (a trigger disabled or dropped)".into(),
                    });
                }
                ("keyfall", "attach" | "capture_enabled") => {
                    if let Some(mut gap) = open.take() {
                        gap.to = Some(m.at);
                        gap.to_id = Some(m.id);
                        window.gaps.push(gap);
                    }
                }
                (table, "capture_failed") => window.gaps.push(point(format!("a change to {table} was not recorded"))),
                (table, "capture_refused") => {
                    window.gaps.push(point(format!("a change to {table} was recorded without contents")))
                }
                (_, "truncate") => window.gaps.push(point("the settings were truncated".into())),
                _ => {}
            }
        }
        window.gaps.extend(open);
        window
    }

    /// "history since 2026-12-08 09:14 UTC (attach)", and the gaps.
    pub fn since(&self) -> String {
        let mut out = match &self.start {
            Some(s) => format!("history since {} ({})", s.at.format("%Y-%m-%d %H:%M UTC"), s.why),
            None => "no history recorded yet".to_string(),
        };
        for g in &self.gaps {
            out.push_str(&format!("; gap: {}", g.describe()));
        }
        out
    }

    /// Whether the world at `cut` can be rebuilt exactly: history has
    /// begun by then, and no gap lies at or after it (the world is rebuilt
    /// from now backwards, and what went unrecorded cannot be undone).
    pub fn vouch(&self, cut: &Cut) -> Result<(), String> {
        let Some(start) = &self.start else {
            return Err("keyfall does not know: no history is recorded yet (it begins at attach or migrate)".into());
        };
        let before_start = match cut.entry {
            Some(n) => n <= start.id,
            None => cut.at < start.at,
        };
        if before_start {
            return Err(format!(
                "keyfall does not know the world at {}: its history begins at {} ({})",
                cut.label(),
                stamp(start.at),
                start.why
            ));
        }
        // The latest gap whose end is not before the cut.
        let blocking = self.gaps.iter().rev().find(|g| match (cut.entry, g.to, g.to_id) {
            (_, None, _) | (_, _, None) => true,
            (Some(n), _, Some(to_id)) => n <= to_id,
            (None, Some(to), _) => cut.at <= to,
        });
        if let Some(gap) = blocking {
            let inside = match cut.entry {
                Some(n) => n > gap.from_id,
                None => cut.at >= gap.from,
            };
            return Err(if inside {
                format!(
                    "keyfall does not know the world at {}: history has a gap there: {}",
                    cut.label(),
                    gap.describe()
                )
            } else {
                format!(
                    "keyfall does not know the world at {}: history has a gap after it ({}), and keyfall rebuilds \
                     the past from the present backwards",
                    cut.label(),
                    gap.describe()
                )
            });
        }
        Ok(())
    }
}

/// One recorded change to undo: the key the row has after it (to take
/// away) and the row before it with its key (to put back).
#[derive(Debug, Clone)]
pub struct Undo<K, V> {
    pub remove: Option<K>,
    pub restore: Option<(K, V)>,
}

/// Undo `changes` (newest first) on `rows`, the present: the rows as they
/// were before the oldest of them.
pub fn rewind<K: Eq + Hash, V>(rows: &mut HashMap<K, V>, changes: impl IntoIterator<Item = Undo<K, V>>) {
    for change in changes {
        if let Some(k) = change.remove {
            rows.remove(&k);
        }
        if let Some((k, v)) = change.restore {
            rows.insert(k, v);
        }
    }
}

/// A user as the history records it (`keyfall_person`), or `None` when the
/// document is not one.
pub fn user_from(id: i64, doc: &Value) -> Option<User> {
    Some(User {
        id,
        email: doc.get("email")?.as_str()?.to_string(),
        role: named(doc.get("role"))?,
        is_superuser: doc.get("is_superuser").and_then(Value::as_bool).unwrap_or(false),
        is_active: doc.get("is_active").and_then(Value::as_bool).unwrap_or(false),
        account_id: doc.get("account_id").and_then(Value::as_i64),
    })
}

pub fn account_from(id: i64, doc: &Value) -> Option<Account> {
    Some(Account {
        id,
        slug: doc.get("slug")?.as_str()?.to_string(),
        name: doc.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        status: named::<AccountStatus>(doc.get("status"))?,
    })
}

fn named<T: serde::de::DeserializeOwned>(v: Option<&Value>) -> Option<T> {
    let s = match v {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    serde_json::from_value(Value::String(s)).ok()
}

/// Whether a history document for a role or status parses; unknown names
/// are `Other`, as the store reads them.
pub fn role_of(doc: &Value) -> Role {
    named(doc.get("role")).unwrap_or(Role::Other)
}

/// A setting as an audit row keeps it (`keyfall_captured`: the config
/// redacted, is_active, the version where the app keeps one, and the
/// verdict where redaction would hide it). A fingerprint in the config is
/// shown as a masked key; a recorded verdict is what the walk uses.
/// `Err` for a row recorded while the mapping did not fit (`{"row": …}`).
pub fn setting_from(id: i64, account_id: i64, integration_type: &str, doc: &Value) -> Result<Setting, String> {
    let Some(config) = doc.get("config") else {
        return Err(format!("setting {id} was recorded while the mapping did not fit the app's table"));
    };
    let config = shown(config);
    let withheld = doc
        .get("verdict")
        .and_then(Value::as_str)
        .map(|v| Withheld { verdict: v.to_string(), provider: config.get("provider").cloned() });
    Ok(Setting {
        id,
        account_id,
        integration_type: integration_type.to_string(),
        config,
        is_active: doc.get("is_active").and_then(Value::as_bool).unwrap_or(false),
        version: doc.get("version").and_then(Value::as_i64).unwrap_or(0),
        // When it was written before then, the log could say; the walk
        // does not need it.
        updated_at: None,
        updated_by: None,
        version_token: doc.get("version").is_none(),
        withheld,
    })
}

/// A redacted config as keyfall shows a key it cannot read: each
/// fingerprint becomes the mask and the fingerprint (`•••••••• #1a2b3c4d`).
pub fn shown(config: &Value) -> Value {
    match config {
        Value::String(s) if is_fingerprint(s) => Value::String(format!("{MASK} {s}")),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shown(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(shown).collect()),
        other => other.clone(),
    }
}

/// Where a config (or an audit document holding one under `config`) holds
/// the key of fingerprint `fp`: the dotted path of the first field whose
/// value is the fingerprint, a masked key ending in it, or a key of that
/// fingerprint (a raw config, read by a session that sees keys).
pub fn holds_key(doc: &Value, fp: &str) -> Option<String> {
    fn walk(v: &Value, fp: &str, path: &mut Vec<String>) -> Option<String> {
        match v {
            Value::String(s) => {
                let found = s == fp
                    || super::secret::masked_fingerprint(s) == Some(fp)
                    || (!is_fingerprint(s) && super::secret::fingerprint(s) == fp);
                found.then(|| if path.is_empty() { "(config)".to_string() } else { path.join(".") })
            }
            Value::Object(map) => map.iter().find_map(|(k, x)| {
                path.push(k.clone());
                let r = walk(x, fp, path);
                path.pop();
                r
            }),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| {
                path.push(i.to_string());
                let r = walk(x, fp, path);
                path.pop();
                r
            }),
            _ => None,
        }
    }
    walk(doc, fp, &mut Vec::new())
}

/// One recorded change of a settings row, for the blast radius.
#[derive(Debug, Clone)]
pub struct RowChange {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The field holding the key before and after the change, if it did.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A stretch during which one row held the key: from the entry that put
/// it there (`None`: it held it when history began) to the one that took
/// it away (`None`: it still does).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    pub field: String,
    pub from: Option<DateTime<Utc>>,
    pub from_entry: Option<i64>,
    pub to: Option<DateTime<Utc>>,
    pub to_entry: Option<i64>,
}

/// The stretches a row held the key, from its changes in id order and
/// whether it holds it now (`now`: the field).
pub fn held(changes: &[RowChange], now: Option<&str>) -> Vec<Held> {
    let mut out = Vec::new();
    let first = match changes.first() {
        Some(c) => c.before.clone(),
        None => now.map(str::to_string),
    };
    let mut open: Option<Held> =
        first.map(|field| Held { field, from: None, from_entry: None, to: None, to_entry: None });
    for c in changes {
        match (&c.after, open.take()) {
            (Some(f), Some(h)) if *f == h.field => open = Some(h),
            (Some(f), Some(mut h)) => {
                h.to = Some(c.at);
                h.to_entry = Some(c.id);
                out.push(h);
                open =
                    Some(Held { field: f.clone(), from: Some(c.at), from_entry: Some(c.id), to: None, to_entry: None });
            }
            (Some(f), None) => {
                open =
                    Some(Held { field: f.clone(), from: Some(c.at), from_entry: Some(c.id), to: None, to_entry: None })
            }
            (None, Some(mut h)) => {
                h.to = Some(c.at);
                h.to_entry = Some(c.id);
                out.push(h);
            }
            (None, None) => {}
        }
    }
    out.extend(open);
    out
}

/// Everything but the users at a cut (`report --at`).
#[derive(Debug, Clone)]
pub struct World {
    pub cut: Cut,
    pub window: Window,
    pub policy: Policy,
    /// Function name → integration type.
    pub functions: HashMap<String, String>,
    /// Every account and setting, and the chain.
    pub snapshot: Snapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 10, 12, 0, 0).unwrap()
    }

    #[test]
    fn moments() {
        let at = |y, mo, d, h, mi| Moment::At(Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap());
        assert_eq!(parse_moment("#812", now()), Ok(Moment::BeforeEntry(812)));
        assert_eq!(parse_moment("3 days ago", now()), Ok(at(2026, 12, 7, 12, 0)));
        assert_eq!(parse_moment("2h ago", now()), Ok(at(2026, 12, 10, 10, 0)));
        assert_eq!(parse_moment("90 min ago", now()), Ok(at(2026, 12, 10, 10, 30)));
        assert_eq!(parse_moment("yesterday 14:00", now()), Ok(at(2026, 12, 9, 14, 0)));
        assert_eq!(parse_moment("yesterday", now()), Ok(at(2026, 12, 9, 0, 0)));
        assert_eq!(parse_moment("2026-12-08 09:14", now()), Ok(at(2026, 12, 8, 9, 14)));
        assert_eq!(parse_moment("2026-12-08T09:14:00+01:00", now()), Ok(at(2026, 12, 8, 8, 14)));
        assert_eq!(parse_moment("2026-12-08", now()), Ok(at(2026, 12, 8, 0, 0)));
        for bad in ["", "#", "#-1", "soon", "3 eons ago", "yesterday 25:00", "99999999999999999 days ago"] {
            assert!(parse_moment(bad, now()).is_err(), "{bad}");
        }
    }

    fn mark(id: i64, h: u32, action: &str) -> Mark {
        Mark {
            id,
            at: Utc.with_ymd_and_hms(2026, 12, 8, h, 0, 0).unwrap(),
            action: action.into(),
            table: "keyfall".into(),
            after: None,
        }
    }

    #[test]
    fn gaps_and_start() {
        let w = Window::from_marks(&[mark(10, 9, "history_start"), mark(20, 11, "detach"), mark(30, 13, "attach")]);
        let cut = |h| Cut { at: Utc.with_ymd_and_hms(2026, 12, 8, h, 0, 0).unwrap(), entry: None };
        assert!(w.vouch(&cut(8)).unwrap_err().contains("begins"));
        assert!(w.vouch(&cut(10)).unwrap_err().contains("gap after it"));
        assert!(w.vouch(&cut(12)).unwrap_err().contains("gap there"));
        assert!(w.vouch(&cut(14)).is_ok());
        assert!(w.since().starts_with("history since 2026-12-08 09:00 UTC (attach); gap: detached from"));
    }

    #[test]
    fn rewinding_undoes_newest_first() {
        let mut rows: HashMap<i32, &str> = [(1, "c")].into();
        // a→b at #1, b→c at #2, 2 inserted at #3: newest first.
        rewind(
            &mut rows,
            vec![
                Undo { remove: Some(2), restore: None },
                Undo { remove: Some(1), restore: Some((1, "b")) },
                Undo { remove: Some(1), restore: Some((1, "a")) },
            ],
        );
        assert_eq!(rows, [(1, "a")].into());
    }

    #[test]
    fn a_key_held_from_one_change_to_the_next() {
        let t = |h| Utc.with_ymd_and_hms(2026, 12, 8, h, 0, 0).unwrap();
        let change = |id, h, before: Option<&str>, after: Option<&str>| RowChange {
            id,
            at: t(h),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        };
        let spans = held(&[change(5, 10, None, Some("apiKey")), change(9, 12, Some("apiKey"), None)], None);
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].from_entry, spans[0].to_entry), (Some(5), Some(9)));
        // Held before history began, still held.
        let spans = held(&[], Some("apiKey"));
        assert_eq!((spans[0].from, spans[0].to), (None, None));
        let fp = crate::domain::secret::fingerprint("sk-live-abc");
        let doc = serde_json::json!({"config": {"apiKey": fp, "model": "x"}});
        assert_eq!(holds_key(&doc, &fp).as_deref(), Some("config.apiKey"));
        let raw = serde_json::json!({"headers": [{"Authorization": "sk-live-abc"}]});
        assert_eq!(holds_key(&raw, &fp).as_deref(), Some("headers.0.Authorization"));
        assert_eq!(holds_key(&raw, "#00000000"), None);
    }
}
