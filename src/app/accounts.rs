//! The accounts pane: every account in memory as a compact entry (system
//! accounts first, in chain order, then tenants by slug), a filter on slug
//! and name that narrows incrementally, and a selection. The filter ranks
//! in tiers — slug prefix, slug substring, name substring, then fuzzy
//! (letters in order) in slug, then in name — and within a tier keeps the
//! list's order: predictable, and at 100,000 accounts a keystroke costs a
//! few byte comparisons per candidate rather than a fuzzy score each. Only the rows
//! on screen are ever rendered; their settings are fetched on demand. The
//! list scrolls by half a screen when the selection crosses its edge, so
//! most cursor moves only move the highlight (a few hundred bytes to the
//! terminal rather than every row again).

use std::cell::Cell;
use std::sync::Arc;

use crate::domain::{Account, AccountStatus, ChainEntry};

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub account: Account,
    /// Position in the system chain, if a system account.
    pub chain: Option<i32>,
}

#[derive(Debug, Default)]
pub struct AccountsPane {
    /// Every account and its filter keys; shared with a filter running off
    /// the UI task, replaced whole when the accounts change.
    index: Arc<Index>,
    /// Indices into the index's entries that pass the filter, best match
    /// first.
    shown: Vec<u32>,
    pub filter: String,
    /// Typing goes to the filter.
    pub filtering: bool,
    /// Index into `shown`.
    selected: usize,
    /// First row on screen; kept by the view so the selection stays visible.
    pub offset: Cell<usize>,
    /// The filter `shown` was computed for, to narrow incrementally.
    shown_for: String,
    /// Where each tier ends in `shown` (while a filter is in force): an
    /// entry's tier for a narrowed filter is no better than it was.
    tier_ends: [usize; TIERS],
    /// A filter to run off the UI task, not yet handed out (`take_job`).
    job: Option<FilterJob>,
    /// Above this many accounts a filter runs off the UI task; `None`, the
    /// default, [`INLINE_FILTER_LIMIT`].
    inline_limit: Option<usize>,
    /// The index holds only the first page; the rest is on its way.
    pub partial: bool,
}

/// Up to this many accounts a keystroke filters on the spot (at 100,000 a
/// pass costs about a millisecond); above it the pass runs off the UI task
/// and the list follows when it is done, so a keystroke's frame never waits
/// for a pass over a million accounts.
pub const INLINE_FILTER_LIMIT: usize = 250_000;

/// The accounts and their filter keys, built once per set of accounts.
#[derive(Debug, Default)]
pub struct Index {
    /// The chain's accounts in chain order, then tenants by slug (bytes)
    /// and id.
    entries: Vec<Entry>,
    keys: Keys,
    /// Where the tenants start in `entries`.
    tenants_from: usize,
    /// (id, position in `entries`), by id: a lookup is a binary search,
    /// not a pass over a million entries.
    by_id: Vec<(i64, u32)>,
}

impl Index {
    fn new(mut entries: Vec<Entry>) -> Index {
        entries.sort_by(|a, b| {
            (a.chain.unwrap_or(i32::MAX), a.account.slug.as_bytes(), a.account.id).cmp(&(
                b.chain.unwrap_or(i32::MAX),
                b.account.slug.as_bytes(),
                b.account.id,
            ))
        });
        let tenants_from = entries.iter().take_while(|e| e.chain.is_some()).count();
        let mut by_id: Vec<(i64, u32)> = entries.iter().enumerate().map(|(i, e)| (e.account.id, i as u32)).collect();
        by_id.sort_unstable();
        Index { keys: Keys::new(&entries), entries, tenants_from, by_id }
    }
}

/// A filter pass to run off the UI task: the index it reads, the filter,
/// and the result it may narrow.
#[derive(Debug)]
pub struct FilterJob {
    index: Arc<Index>,
    filter: String,
    narrow: Option<(String, Vec<u32>, [usize; TIERS])>,
}

/// What a [`FilterJob`] found, for [`AccountsPane::apply`].
#[derive(Debug)]
pub struct Filtered {
    index: Arc<Index>,
    filter: String,
    shown: Vec<u32>,
    tier_ends: [usize; TIERS],
}

impl FilterJob {
    pub fn run(self) -> Filtered {
        let narrow = self.narrow.as_ref().map(|(f, shown, ends)| (f.as_str(), shown.clone(), *ends));
        let (shown, tier_ends) = filter_entries(&self.index, &self.filter, narrow);
        Filtered { index: self.index, filter: self.filter, shown, tier_ends }
    }
}

impl AccountsPane {
    /// Replace the index, keeping the selection on the same account when it
    /// is still there.
    pub fn set_accounts(&mut self, accounts: Vec<Account>, chain: &[ChainEntry]) {
        let keep = self.selected().map(|e| e.account.id);
        // `shown` indexes the old entries: forget it before replacing them.
        self.shown.clear();
        self.selected = 0;
        let entries: Vec<Entry> = accounts
            .into_iter()
            .map(|account| {
                let chain = chain.iter().find(|c| c.slug == account.slug).map(|c| c.position);
                Entry { account, chain }
            })
            .collect();
        self.index = Arc::new(Index::new(entries));
        self.shown_for.clear();
        self.refilter();
        if let Some(id) = keep {
            self.select_account(id);
        }
    }

    /// Filter off the UI task above `limit` accounts (tests use a small one).
    pub fn set_inline_limit(&mut self, limit: usize) {
        self.inline_limit = Some(limit);
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    pub fn total(&self) -> usize {
        self.index.entries.len()
    }

    /// Whether the list shown is still that of an earlier filter (a pass
    /// is running off the UI task).
    pub fn matching(&self) -> bool {
        self.shown_for != self.filter
    }

    pub fn selected_index(&self) -> usize {
        self.selected
    }

    pub fn selected(&self) -> Option<&Entry> {
        self.shown.get(self.selected).map(|&i| &self.index.entries[i as usize])
    }

    /// The entries shown at rows `from..from+count`.
    pub fn window(&self, from: usize, count: usize) -> impl Iterator<Item = &Entry> {
        self.shown.iter().skip(from).take(count).map(|&i| &self.index.entries[i as usize])
    }

    /// Every account of the index, shown or not (the `:` palette's).
    pub fn entries(&self) -> &[Entry] {
        &self.index.entries
    }

    /// Any account of the index, shown or not, by id.
    pub fn entry_by_id(&self, id: i64) -> Option<&Entry> {
        let by_id = &self.index.by_id;
        let at = by_id.binary_search_by_key(&id, |&(id, _)| id).ok()?;
        self.index.entries.get(by_id[at].1 as usize)
    }

    /// Any account of the index, shown or not, by slug (a binary search
    /// among tenants).
    pub fn entry_by_slug(&self, slug: &str) -> Option<&Entry> {
        let (chain, tenants) = self.index.entries.split_at(self.index.tenants_from);
        if let Some(e) = chain.iter().find(|e| e.account.slug == slug) {
            return Some(e);
        }
        let at = tenants.partition_point(|e| e.account.slug.as_bytes() < slug.as_bytes());
        tenants.get(at).filter(|e| e.account.slug == slug)
    }

    pub fn select_account(&mut self, id: i64) -> bool {
        let entries = &self.index.entries;
        match self.shown.iter().position(|&i| entries[i as usize].account.id == id) {
            Some(pos) => {
                self.selected = pos;
                true
            }
            None => false,
        }
    }

    /// Move the selection by `delta` rows, clamped.
    pub fn move_by(&mut self, delta: isize) {
        if self.shown.is_empty() {
            self.selected = 0;
            return;
        }
        let max = self.shown.len() as isize - 1;
        self.selected = (self.selected as isize + delta).clamp(0, max) as usize;
    }

    pub fn move_to(&mut self, index: usize) {
        self.selected = index.min(self.shown.len().saturating_sub(1));
    }

    pub fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.refilter();
    }

    /// The filter pass waiting to run off the UI task, if any: the caller
    /// runs it (`FilterJob::run`) and hands the result to `apply`.
    pub fn take_job(&mut self) -> Option<FilterJob> {
        self.job.take()
    }

    /// Install a pass's result if it is for the filter and the index in
    /// force (a later keystroke or a new index makes it stale: dropped).
    pub fn apply(&mut self, filtered: Filtered) -> bool {
        if filtered.filter != self.filter || !Arc::ptr_eq(&filtered.index, &self.index) {
            return false;
        }
        self.install(filtered.filter, filtered.shown, filtered.tier_ends);
        true
    }

    /// Recompute `shown`, here or (a big index and a filter) off the UI
    /// task. A filter that extends the previous one only looks at what
    /// already matched, which keeps typing fast.
    fn refilter(&mut self) {
        let big = self.index.entries.len() > self.inline_limit.unwrap_or(INLINE_FILTER_LIMIT);
        let narrowing = !self.shown_for.trim().is_empty() && self.filter.starts_with(&self.shown_for);
        if big && !self.filter.trim().is_empty() {
            self.job = Some(FilterJob {
                index: Arc::clone(&self.index),
                filter: self.filter.clone(),
                narrow: narrowing.then(|| (self.shown_for.clone(), self.shown.clone(), self.tier_ends)),
            });
            return;
        }
        self.job = None;
        let narrow = narrowing.then(|| (self.shown_for.as_str(), std::mem::take(&mut self.shown), self.tier_ends));
        let (shown, tier_ends) = filter_entries(&self.index, &self.filter, narrow);
        let filter = self.filter.clone();
        self.install(filter, shown, tier_ends);
    }

    fn install(&mut self, filter: String, shown: Vec<u32>, tier_ends: [usize; TIERS]) {
        let keep = self.selected().map(|e| e.account.id);
        self.shown = shown;
        self.tier_ends = tier_ends;
        self.shown_for = filter;
        self.selected = 0;
        self.offset.set(0);
        if let Some(id) = keep
            && self.filter.is_empty()
        {
            self.select_account(id);
        }
    }

    /// Keep the selection on screen for a viewport of `height` rows and
    /// return the first row to draw. Within the screen only the highlight
    /// moves; past an edge the list jumps so the selection lands mid-screen.
    pub fn scroll_for(&self, height: usize) -> usize {
        let height = height.max(1);
        let last = self.shown.len().saturating_sub(height);
        let mut offset = self.offset.get().min(last);
        if self.selected < offset {
            offset = self.selected.saturating_sub(height / 2);
        } else if self.selected >= offset + height {
            offset = (self.selected + 1 + height / 2).saturating_sub(height).min(last);
        }
        self.offset.set(offset);
        offset
    }
}

const TIERS: usize = 5;

/// The entries of `index` that pass `filter`, best tier first and in list
/// order within a tier, with where each tier ends. `narrow`: the result of
/// a filter this one extends (only its matches are looked at, each no
/// better than it ranked).
fn filter_entries(
    index: &Index,
    filter: &str,
    narrow: Option<(&str, Vec<u32>, [usize; TIERS])>,
) -> (Vec<u32>, [usize; TIERS]) {
    let words: Vec<Word> = filter.split_whitespace().map(Word::new).collect();
    let all = || (0..index.entries.len() as u32).collect::<Vec<u32>>();
    if words.is_empty() {
        return (all(), [0; TIERS]);
    }
    // Extending a filter can only drop matches: every word of the new
    // filter contains (letters in order, at least) one of the old.
    let narrow = narrow.filter(|(before, _, _)| !before.trim().is_empty() && filter.starts_with(before));
    let narrowing = narrow.is_some();
    let (candidates, ends) = match narrow {
        Some((_, shown, ends)) => (shown, ends),
        None => (all(), [usize::MAX; TIERS]),
    };
    let mut tiers: [Vec<u32>; TIERS] = Default::default();
    let mut floor = 0;
    for (at, i) in candidates.into_iter().enumerate() {
        while floor < TIERS - 1 && at >= ends[floor] {
            floor += 1;
        }
        // Every word must match; the entry ranks by its worst word, and no
        // better than it ranked before the filter grew.
        if let Some(t) = words.iter().try_fold(floor, |worst, w| index.keys.tier(i as usize, w, worst)) {
            tiers[t].push(i);
        }
    }
    let mut tier_ends = [0; TIERS];
    let mut end = 0;
    for (t, tier) in tiers.iter().enumerate() {
        end += tier.len();
        tier_ends[t] = end;
    }
    let mut shown = Vec::with_capacity(end);
    for mut tier in tiers {
        // Candidates in list order fill each tier in order; narrowed ones
        // come tier by tier and need putting back in order.
        if narrowing && !tier.is_sorted() {
            tier.sort_unstable();
        }
        shown.extend(tier);
    }
    (shown, tier_ends)
}

/// Every entry's slug and name as the filter reads them: lowercased once,
/// one after the other in one buffer (a pass over 100,000 entries reads
/// memory in order rather than chasing a pointer each), with the set of
/// bytes each holds, so most entries a word cannot match are passed over
/// without reading their text.
#[derive(Debug, Default)]
struct Keys {
    text: Vec<u8>,
    keys: Vec<Key>,
}

#[derive(Debug)]
struct Key {
    /// Where the slug starts in `text`; the name follows it.
    at: usize,
    slug_len: u32,
    name_len: u32,
    slug_bytes: u64,
    name_bytes: u64,
}

impl Keys {
    fn new(entries: &[Entry]) -> Keys {
        let mut keys = Keys { text: Vec::new(), keys: Vec::with_capacity(entries.len()) };
        for e in entries {
            let at = keys.text.len();
            let (slug, name) = (lower(&e.account.slug), lower(&e.account.name));
            keys.text.extend_from_slice(slug.as_bytes());
            keys.text.extend_from_slice(name.as_bytes());
            keys.keys.push(Key {
                at,
                slug_len: slug.len() as u32,
                name_len: name.len() as u32,
                slug_bytes: byte_set(slug.as_bytes()),
                name_bytes: byte_set(name.as_bytes()),
            });
        }
        keys
    }

    /// How well `word` matches entry `i`, no better than `floor`: 0 slug
    /// prefix, 1 slug substring, 2 name substring, 3 slug letters in order,
    /// 4 name letters in order; None when it does not match. A better match
    /// only gives `floor` back, so what could only tell one is not asked (a
    /// prefix or a substring of the slug is also in order in it). A text
    /// lacking one of the word's bytes cannot match it, so is not read.
    fn tier(&self, i: usize, word: &Word, floor: usize) -> Option<usize> {
        let key = &self.keys[i];
        let w = word.text.as_bytes();
        let slug = &self.text[key.at..key.at + key.slug_len as usize];
        let name = &self.text[key.at + key.slug_len as usize..][..key.name_len as usize];
        let maybe_slug = word.bytes & !key.slug_bytes == 0;
        let maybe_name = word.bytes & !key.name_bytes == 0;
        let slug_has = || maybe_slug && contains(slug, w);
        let name_has = || maybe_name && contains(name, w);
        let slug_in_order = || maybe_slug && in_order(w, slug);
        let name_in_order = || maybe_name && in_order(w, name);
        match floor {
            0 if maybe_slug && starts_with(slug, w) => Some(0),
            0 | 1 if slug_has() => Some(1),
            0 | 1 if name_has() => Some(2),
            2 if slug_has() || name_has() => Some(2),
            0..=2 if slug_in_order() => Some(3),
            3 if slug_in_order() || name_has() => Some(3),
            0..=3 if name_in_order() => Some(4),
            4 if slug_in_order() || name_in_order() => Some(4),
            _ => None,
        }
    }
}

/// One word of the filter, lowercased, with the set of its bytes.
struct Word {
    text: String,
    bytes: u64,
}

impl Word {
    fn new(word: &str) -> Word {
        let text = word.to_lowercase();
        Word { bytes: byte_set(text.as_bytes()), text }
    }
}

/// The bytes of `text` as a set of 64: each of a–z and 0–9 its own, the
/// rest sharing (a shared one only lets more through to be read).
fn byte_set(text: &[u8]) -> u64 {
    text.iter().fold(0, |set, &b| {
        set | 1
            << match b {
                b'a'..=b'z' => b - b'a',
                b'0'..=b'9' => 26 + b - b'0',
                _ => 36 + b % 28,
            }
    })
}

/// Whether `text` starts with `word`, compared byte by byte (the words
/// are short: a call to `memcmp` costs more).
fn starts_with(text: &[u8], word: &[u8]) -> bool {
    text.len() >= word.len() && text.iter().zip(word).all(|(a, b)| a == b)
}

/// Whether `word` occurs in `text`, bytewise.
fn contains(text: &[u8], word: &[u8]) -> bool {
    match word.split_first() {
        None => true,
        Some((&first, rest)) => {
            text.len() >= word.len()
                && (0..=text.len() - word.len()).any(|i| text[i] == first && starts_with(&text[i + 1..], rest))
        }
    }
}

/// Whether the bytes of `word` occur in `text` in order (the fuzzy match):
/// both are lowercase UTF-8.
fn in_order(word: &[u8], text: &[u8]) -> bool {
    let mut text = text.iter();
    word.iter().all(|b| text.any(|t| t == b))
}

fn lower(text: &str) -> Box<str> {
    if text.is_ascii() { text.to_ascii_lowercase().into() } else { text.to_lowercase().into() }
}

/// A status as the accounts list says it, at three widths: whole, short,
/// one letter. Active is the normal case and says nothing; every other
/// status, trial included, is said.
pub fn status_words(status: AccountStatus) -> Option<[&'static str; 3]> {
    match status {
        AccountStatus::Active => None,
        AccountStatus::Trial => Some(["trial", "trl", "T"]),
        AccountStatus::Suspended => Some(["suspended", "susp", "S"]),
        AccountStatus::Cancelled => Some(["cancelled", "canc", "C"]),
        AccountStatus::Other => Some(["unknown", "unk", "?"]),
    }
}

/// Which characters of `text` a filter matched: each word where it occurs
/// (any case), else its letters in order — as the filter's tiers match.
pub fn matched_chars(text: &str, filter: &str) -> Vec<bool> {
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_lowercase().next().unwrap_or(*c)).collect();
    let mut marks = vec![false; chars.len()];
    for word in filter.split_whitespace() {
        let w: Vec<char> = word.chars().map(|c| c.to_lowercase().next().unwrap_or(c)).collect();
        if w.is_empty() || w.len() > lower.len() {
            continue;
        }
        if let Some(at) = (0..=lower.len() - w.len()).find(|&i| lower[i..i + w.len()] == w[..]) {
            marks[at..at + w.len()].iter_mut().for_each(|m| *m = true);
            continue;
        }
        // Letters in order: only when all of them are there.
        let mut found = Vec::new();
        let mut from = 0;
        for c in &w {
            match lower[from..].iter().position(|x| x == c) {
                Some(p) => {
                    found.push(from + p);
                    from += p + 1;
                }
                None => {
                    found.clear();
                    break;
                }
            }
        }
        for i in found {
            marks[i] = true;
        }
    }
    marks
}

/// One account's row in `width` cells (the chain mark and the markers
/// aside): the slug whole — cut only when it alone does not fit — then,
/// with a name column (`name_at`: where it starts), the name, and the
/// status right-aligned; without one, the status after the slug. What
/// gives way first is the name, then the status's length (whole, short,
/// one letter); a name the filter matched is shown even without a name
/// column, and keeps its place over a whole status word. What the filter
/// matched is highlighted.
pub fn row_spans(
    account: &Account,
    filter: &str,
    width: usize,
    name_at: Option<usize>,
    t: super::widgets::Theme,
) -> Vec<ratatui::text::Span<'static>> {
    use crate::domain::text::visible;
    use ratatui::style::{Modifier, Style};
    use ratatui::text::Span;
    let slug = visible(&account.slug).into_owned();
    let name = visible(&account.name).into_owned();
    let slug_len = slug.chars().count();
    let filtering = !filter.trim().is_empty();
    let slug_marks = if filtering { matched_chars(&slug, filter) } else { Vec::new() };
    let name_marks = if filtering { matched_chars(&name, filter) } else { Vec::new() };
    let name_matched = name_marks.iter().any(|m| *m);
    let columns = name_at.is_some();
    let name_at = name_at.unwrap_or(0);
    let words = status_words(account.status);
    // (status form, name shown), best first.
    let mut tries: Vec<(Option<usize>, bool)> = match words {
        None if columns || name_matched => vec![(None, true), (None, false)],
        None => vec![(None, false)],
        Some(_) if !columns && !name_matched => vec![(Some(0), false)],
        Some(_) if name_matched => vec![(Some(0), true), (Some(1), true), (Some(2), true), (Some(0), false)],
        Some(_) => vec![(Some(0), true), (Some(0), false)],
    };
    tries.extend([(Some(1), false), (Some(2), false)].into_iter().filter(|_| words.is_some()));
    const NAME_MIN: usize = 5;
    let fits = |status: Option<usize>, with_name: bool| {
        let status_len = status.zip(words).map(|(i, w)| w[i].chars().count() + 1).unwrap_or(0);
        let name_from = if name_at > slug_len { name_at } else { slug_len + 1 };
        let room = width.saturating_sub(status_len);
        room >= slug_len && (!with_name || name.is_empty() || room >= name_from + NAME_MIN.min(name.chars().count()))
    };
    let (status, with_name) = tries.iter().copied().find(|(s, n)| fits(*s, *n)).unwrap_or((words.map(|_| 2), false));
    let status_text = status.zip(words).map(|(i, w)| w[i]);
    let status_len = status_text.map(|w| w.chars().count() + 1).unwrap_or(0);
    let base = if account.status.grants_access() { Style::new() } else { t.dim() };
    let hit = t.accent().add_modifier(Modifier::UNDERLINED);
    let mut spans = Vec::new();
    let mut used = 0;
    // Text in `room` cells: cut with an ellipsis, or — when a match would be
    // cut off — the part around the match, after an ellipsis.
    let push = |spans: &mut Vec<Span<'static>>, text: &str, marks: &[bool], room: usize, style: Style| {
        let chars: Vec<char> = text.chars().collect();
        let (from, to, lead, tail) = if chars.len() <= room {
            (0, chars.len(), false, false)
        } else {
            match marks.iter().rposition(|m| *m) {
                // The match would be cut off: end at it, an ellipsis before.
                Some(h) if h + 2 > room => {
                    let to = h + 1;
                    let tail = to < chars.len();
                    let keep = room.saturating_sub(1 + usize::from(tail));
                    (to.saturating_sub(keep), to, true, tail)
                }
                _ => (0, room.saturating_sub(1), false, true),
            }
        };
        if lead {
            spans.push(Span::styled("…", style));
        }
        let mut run = String::new();
        let mut run_hit = false;
        for (i, c) in chars.iter().enumerate().take(to).skip(from) {
            let h = marks.get(i).copied().unwrap_or(false);
            if h != run_hit && !run.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut run), if run_hit { hit } else { style }));
            }
            run_hit = h;
            run.push(*c);
        }
        if !run.is_empty() {
            spans.push(Span::styled(run, if run_hit { hit } else { style }));
        }
        if tail {
            spans.push(Span::styled("…", style));
        }
        (to - from) + usize::from(lead) + usize::from(tail)
    };
    let slug_room = width.saturating_sub(status_len).max(4).min(width);
    used += push(&mut spans, &slug, &slug_marks, slug_room, base);
    if with_name && !name.is_empty() {
        let name_from = if name_at > used { name_at } else { used + 1 };
        let room = width.saturating_sub(status_len + name_from);
        if room > 0 {
            spans.push(Span::raw(" ".repeat(name_from - used)));
            used = name_from;
            used += push(&mut spans, &name, &name_marks, room, t.dim());
        }
    }
    let pad = width.saturating_sub(used + status_len);
    // In columns the status is right-aligned; else it follows the slug.
    if columns {
        spans.push(Span::raw(" ".repeat(pad)));
    }
    if let Some(word) = status_text {
        let style = if account.status.grants_access() { t.dim() } else { t.warn() };
        spans.push(Span::styled(format!(" {word}"), style));
    }
    if !columns {
        spans.push(Span::raw(" ".repeat(pad)));
    }
    spans
}

pub fn status_of(text: &str) -> AccountStatus {
    match text {
        "active" => AccountStatus::Active,
        "trial" => AccountStatus::Trial,
        "suspended" => AccountStatus::Suspended,
        "cancelled" => AccountStatus::Cancelled,
        _ => AccountStatus::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(slugs: &[&str]) -> AccountsPane {
        let accounts = slugs
            .iter()
            .enumerate()
            .map(|(i, s)| Account {
                id: i as i64 + 1,
                slug: s.to_string(),
                name: s.to_string(),
                status: AccountStatus::Active,
            })
            .collect();
        let chain = vec![ChainEntry { position: 1, slug: "aws-admin".into(), account: None }];
        let mut p = AccountsPane::default();
        p.set_accounts(accounts, &chain);
        p
    }

    #[test]
    fn system_accounts_come_first() {
        let p = pane(&["acme", "aws-admin", "paid-2"]);
        let order: Vec<&str> = p.window(0, 10).map(|e| e.account.slug.as_str()).collect();
        assert_eq!(order, vec!["aws-admin", "acme", "paid-2"]);
        assert_eq!(p.selected().unwrap().account.slug, "aws-admin");
    }

    #[test]
    fn filter_narrows_and_clears() {
        let mut p = pane(&["acme", "aws-admin", "paid-2", "paid-20"]);
        p.set_filter("pd2".into());
        let got: Vec<&str> = p.window(0, 10).map(|e| e.account.slug.as_str()).collect();
        assert_eq!(got, vec!["paid-2", "paid-20"]);
        p.set_filter("pd20".into());
        assert_eq!(p.len(), 1);
        p.set_filter(String::new());
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn scrolling_keeps_the_selection_visible() {
        let slugs: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
        let refs: Vec<&str> = slugs.iter().map(String::as_str).collect();
        let mut p = pane(&refs);
        // Within the screen the list stays put.
        p.move_by(9);
        assert_eq!(p.scroll_for(10), 0);
        // One past the edge: the selection lands mid-screen.
        p.move_by(1);
        assert_eq!(p.scroll_for(10), 6);
        p.move_by(40);
        assert_eq!(p.scroll_for(10), 46);
        p.move_by(-45);
        assert_eq!(p.scroll_for(10), 0);
        // The end is never scrolled past.
        p.move_by(1_000);
        assert_eq!(p.selected_index(), 99);
        assert_eq!(p.scroll_for(10), 90);
    }

    #[test]
    fn filter_tiers_prefix_substring_name_then_letters_in_order() {
        let accounts = [
            ("ops-paid", "Ops"),
            ("paid-2", "Paid two"),
            ("pxaxixd", "P"),
            ("acme", "Paid by invoice"),
            ("zeta", "P a i d"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (slug, name))| Account {
            id: i as i64 + 1,
            slug: slug.to_string(),
            name: name.to_string(),
            status: AccountStatus::Active,
        })
        .collect();
        let mut p = AccountsPane::default();
        p.set_accounts(accounts, &[]);
        p.set_filter("PAID".into());
        let got: Vec<&str> = p.window(0, 10).map(|e| e.account.slug.as_str()).collect();
        assert_eq!(got, vec!["paid-2", "ops-paid", "acme", "pxaxixd", "zeta"]);
        // Two words: both must match, anywhere.
        p.set_filter("paid inv".into());
        let got: Vec<&str> = p.window(0, 10).map(|e| e.account.slug.as_str()).collect();
        assert_eq!(got, vec!["acme"]);
        p.set_filter("zz".into());
        assert!(p.is_empty());
    }

    /// The tiers as first written (each question asked in full), against
    /// the skipping ones: the same tier, and with a floor, the worse of the
    /// two — for every word cut from a few slugs and names.
    #[test]
    fn tiers_with_a_floor_are_the_tiers_asked_in_full() {
        fn full(word: &str, slug: &str, name: &str) -> Option<usize> {
            let ordered = |t: &str| {
                let mut t = t.bytes();
                word.bytes().all(|b| t.any(|c| c == b))
            };
            let in_slug = ordered(slug);
            if !in_slug && !ordered(name) {
                return None;
            }
            Some(if slug.starts_with(word) {
                0
            } else if in_slug && slug.contains(word) {
                1
            } else if name.contains(word) {
                2
            } else if in_slug {
                3
            } else {
                4
            })
        }
        let entries: Vec<Entry> =
            [("xl-000420", "XL tenant 420"), ("paid", "Paid Inc"), ("café-x", "Ünïcode Café"), ("a-b", "")]
                .iter()
                .enumerate()
                .map(|(i, (slug, name))| Entry {
                    account: Account {
                        id: i as i64,
                        slug: slug.to_string(),
                        name: name.to_string(),
                        status: AccountStatus::Active,
                    },
                    chain: None,
                })
                .collect();
        let keys = Keys::new(&entries);
        let texts = "xl-000420 xl tenant 420 paid inc café-x ünïcode café a-b";
        let mut words: Vec<String> = vec!["zz".into(), "x0".into(), "l4".into(), "pc".into(), "é".into(), "-".into()];
        for start in 0..texts.len() {
            for end in start + 1..=(start + 5).min(texts.len()) {
                if let Some(w) = texts.get(start..end).filter(|w| !w.contains(' ')) {
                    words.push(w.to_string());
                }
            }
        }
        for (i, e) in entries.iter().enumerate() {
            let (slug, name) = (e.account.slug.to_lowercase(), e.account.name.to_lowercase());
            for w in &words {
                let want = full(w, &slug, &name);
                for floor in 0..TIERS {
                    let got = keys.tier(i, &Word::new(w), floor);
                    assert_eq!(got, want.map(|t| t.max(floor)), "{w:?} in {slug:?} / {name:?}, floor {floor}");
                }
            }
        }
    }

    /// Above the inline limit a keystroke only queues a pass: the list is
    /// the old one until the pass's result is applied, and a result for an
    /// earlier keystroke or an older index is dropped.
    #[test]
    fn a_big_index_filters_off_the_ui_task_and_the_latest_pass_wins() {
        let mut p = pane(&["acme", "aws-admin", "paid-2", "paid-20"]);
        p.set_inline_limit(2);
        p.set_filter("pai".into());
        assert!(p.matching() && p.len() == 4, "the old list until the pass is done");
        let first = p.take_job().expect("a pass to run");
        p.set_filter("paid-20".into());
        let second = p.take_job().expect("a pass to run");
        assert!(!p.apply(first.run()), "a pass for an earlier keystroke is dropped");
        assert!(p.apply(second.run()));
        assert!(!p.matching());
        let got: Vec<&str> = p.window(0, 10).map(|e| e.account.slug.as_str()).collect();
        assert_eq!(got, vec!["paid-20"]);
        // Narrowing, then clearing, off the task and on it.
        p.set_filter("paid-2".into());
        let job = p.take_job().unwrap();
        assert!(p.apply(job.run()));
        assert_eq!(p.len(), 2);
        p.set_filter(String::new());
        assert!(p.take_job().is_none(), "no filter: every account, on the spot");
        assert_eq!(p.len(), 4);
        // A new index makes a running pass stale.
        p.set_filter("acme".into());
        let job = p.take_job().unwrap();
        let accounts = vec![Account { id: 9, slug: "acme".into(), name: "A".into(), status: AccountStatus::Active }];
        p.set_accounts(accounts, &[]);
        assert!(!p.apply(job.run()));
        assert!(p.take_job().is_none(), "one account: filtered on the spot");
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn accounts_are_found_by_id_and_slug_whether_shown_or_not() {
        let mut p = pane(&["zeta", "acme", "aws-admin", "paid-2", "paid-20"]);
        p.set_filter("paid".into());
        for (i, slug) in ["zeta", "acme", "aws-admin", "paid-2", "paid-20"].iter().enumerate() {
            assert_eq!(p.entry_by_slug(slug).map(|e| e.account.id), Some(i as i64 + 1), "{slug}");
            assert_eq!(p.entry_by_id(i as i64 + 1).map(|e| e.account.slug.as_str()), Some(*slug));
        }
        assert!(p.entry_by_slug("paid").is_none() && p.entry_by_slug("zz").is_none());
        assert!(p.entry_by_id(99).is_none());
    }

    #[test]
    fn the_match_is_marked_substring_first_then_letters_in_order() {
        let marked = |text: &str, filter: &str| -> String {
            text.chars().zip(matched_chars(text, filter)).map(|(c, m)| if m { c } else { '.' }).collect()
        };
        assert_eq!(marked("Umbrella Corp", "corp"), ".........Corp");
        assert_eq!(marked("paid-2", "pd2"), "p..d.2");
        assert_eq!(marked("acme", "zz"), "....");
        assert_eq!(marked("Initech (trial)", "init trial"), "Init.....trial.");
    }

    #[test]
    fn the_filter_matches_names_when_slugs_do_not() {
        let accounts = vec![
            Account { id: 1, slug: "acme".into(), name: "Acme Enterprise".into(), status: AccountStatus::Active },
            Account { id: 2, slug: "globex".into(), name: "Globex".into(), status: AccountStatus::Active },
        ];
        let mut p = AccountsPane::default();
        p.set_accounts(accounts, &[]);
        p.set_filter("Enterprise".into());
        let got: Vec<&str> = p.window(0, 10).map(|e| e.account.slug.as_str()).collect();
        assert_eq!(got, vec!["acme"]);
    }
}
