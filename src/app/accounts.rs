//! The accounts pane: every account in memory as a compact entry (system
//! accounts first, in chain order, then tenants by slug), a fuzzy filter
//! that narrows incrementally, and a selection. Only the rows on screen are
//! ever rendered; their settings are fetched on demand.

use std::cell::Cell;

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

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
    /// re-scores what already matched, which keeps typing fast at 100,000.
    fn refilter(&mut self) {
        let keep = self.selected().map(|e| e.account.id);
        if self.filter.trim().is_empty() {
            self.shown = (0..self.entries.len() as u32).collect();
        } else {
            // Extending a filter can only drop matches — except under
            // negation (`!ab` matches what `!a` does not).
            let narrowing =
                !self.shown_for.is_empty() && self.filter.starts_with(&self.shown_for) && !self.filter.contains('!');
            let candidates: Vec<u32> =
                if narrowing { std::mem::take(&mut self.shown) } else { (0..self.entries.len() as u32).collect() };
            let pattern = Pattern::parse(&self.filter, CaseMatching::Ignore, Normalization::Smart);
            let mut matcher = Matcher::new(Config::DEFAULT);
            let mut buf = Vec::new();
            let mut scored: Vec<(u32, u32)> = candidates
                .into_iter()
                .filter_map(|i| {
                    let slug = &self.entries[i as usize].account.slug;
                    pattern.score(Utf32Str::new(slug, &mut buf), &mut matcher).map(|s| (s, i))
                })
                .collect();
            scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            self.shown = scored.into_iter().map(|(_, i)| i).collect();
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
    /// return the first row to draw.
    pub fn scroll_for(&self, height: usize) -> usize {
        let height = height.max(1);
        let mut offset = self.offset.get().min(self.shown.len().saturating_sub(1));
        if self.selected < offset {
            offset = self.selected;
        } else if self.selected >= offset + height {
            offset = self.selected + 1 - height;
        }
        self.offset.set(offset);
        offset
    }
}

pub fn status_of(text: &str) -> AccountStatus {
    serde_json::from_value(serde_json::Value::String(text.to_string())).unwrap_or(AccountStatus::Other)
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
        p.move_by(50);
        assert_eq!(p.scroll_for(10), 41);
        p.move_by(-45);
        assert_eq!(p.scroll_for(10), 5);
        p.move_by(1_000);
        assert_eq!(p.selected_index(), 99);
    }
}
