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

use crate::domain::{Account, AccountStatus, ChainEntry};

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub account: Account,
    /// Position in the system chain, if a system account.
    pub chain: Option<i32>,
}

#[derive(Debug, Default)]
pub struct AccountsPane {
    entries: Vec<Entry>,
    /// Indices into `entries` that pass the filter, best match first.
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
    /// Each entry's slug and name, lowercased once, in `entries` order.
    keys: Vec<(Box<str>, Box<str>)>,
}

impl AccountsPane {
    /// Replace the index, keeping the selection on the same account when it
    /// is still there.
    pub fn set_accounts(&mut self, accounts: Vec<Account>, chain: &[ChainEntry]) {
        let keep = self.selected().map(|e| e.account.id);
        // `shown` indexes the old entries: forget it before replacing them.
        self.shown.clear();
        self.selected = 0;
        let mut entries: Vec<Entry> = accounts
            .into_iter()
            .map(|account| {
                let chain = chain.iter().find(|c| c.slug == account.slug).map(|c| c.position);
                Entry { account, chain }
            })
            .collect();
        // Stable: tenants keep the store's slug order.
        entries.sort_by_key(|e| e.chain.unwrap_or(i32::MAX));
        self.keys = entries.iter().map(|e| (lower(&e.account.slug), lower(&e.account.name))).collect();
        self.entries = entries;
        self.shown_for.clear();
        self.refilter();
        if let Some(id) = keep {
            self.select_account(id);
        }
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    pub fn total(&self) -> usize {
        self.entries.len()
    }

    pub fn selected_index(&self) -> usize {
        self.selected
    }

    pub fn selected(&self) -> Option<&Entry> {
        self.shown.get(self.selected).map(|&i| &self.entries[i as usize])
    }

    /// The entries shown at rows `from..from+count`.
    pub fn window(&self, from: usize, count: usize) -> impl Iterator<Item = &Entry> {
        self.shown.iter().skip(from).take(count).map(|&i| &self.entries[i as usize])
    }

    pub fn entry_by_id(&self, id: i64) -> Option<&Entry> {
        self.entries.iter().find(|e| e.account.id == id)
    }

    pub fn select_account(&mut self, id: i64) -> bool {
        match self.shown.iter().position(|&i| self.entries[i as usize].account.id == id) {
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

    /// Recompute `shown`. A filter that extends the previous one only
    /// looks at what already matched, which keeps typing fast at 100,000.
    fn refilter(&mut self) {
        let keep = self.selected().map(|e| e.account.id);
        let words: Vec<String> = self.filter.split_whitespace().map(|w| w.to_lowercase()).collect();
        if words.is_empty() {
            self.shown = (0..self.entries.len() as u32).collect();
        } else {
            // Extending a filter can only drop matches: every word of the
            // new filter contains (letters in order, at least) one of the old.
            let narrowing = !self.shown_for.trim().is_empty() && self.filter.starts_with(&self.shown_for);
            let candidates: Vec<u32> =
                if narrowing { std::mem::take(&mut self.shown) } else { (0..self.entries.len() as u32).collect() };
            let mut tiers: [Vec<u32>; TIERS] = Default::default();
            for i in candidates {
                let (slug, name) = &self.keys[i as usize];
                // Every word must match; the entry ranks by its worst word.
                let tier = words.iter().try_fold(0, |worst, w| tier(w, slug, name).map(|t| t.max(worst)));
                if let Some(t) = tier {
                    tiers[t].push(i);
                }
            }
            let mut shown = Vec::with_capacity(tiers.iter().map(Vec::len).sum());
            for mut tier in tiers {
                // Candidates in list order fill each tier in order; narrowed
                // ones come tier by tier and need putting back in order.
                if narrowing {
                    tier.sort_unstable();
                }
                shown.extend(tier);
            }
            self.shown = shown;
        }
        self.shown_for = self.filter.clone();
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

/// How well `word` (lowercase) matches an entry's lowercase slug and name:
/// 0 slug prefix, 1 slug substring, 2 name substring, 3 slug letters in
/// order, 4 name letters in order; None when it does not.
fn tier(word: &str, slug: &str, name: &str) -> Option<usize> {
    let in_slug = in_order(word, slug);
    if !in_slug && !in_order(word, name) {
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

/// Whether the characters of `word` occur in `text` in order (the fuzzy
/// match), compared bytewise: both are lowercase UTF-8.
fn in_order(word: &str, text: &str) -> bool {
    let mut text = text.as_bytes().iter();
    word.as_bytes().iter().all(|b| text.any(|t| t == b))
}

fn lower(text: &str) -> Box<str> {
    if text.is_ascii() { text.to_ascii_lowercase().into() } else { text.to_lowercase().into() }
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
