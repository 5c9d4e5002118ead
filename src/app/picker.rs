//! A small fuzzy picker for the resolve-as panel: users (searched in the
//! database, 1,000,000 of them, a page at a time) and AI functions (local).

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    User,
    Function,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// What is picked (an email, a function name).
    pub value: String,
    /// Shown beside it (role and account, integration type).
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Picker {
    pub kind: PickerKind,
    pub query: String,
    /// Every candidate known for the current query.
    items: Vec<Item>,
    /// Indices into `items` that match `query`, best first.
    shown: Vec<usize>,
    pub selected: usize,
    /// A search is in flight (users only).
    pub searching: bool,
}

impl Picker {
    pub fn new(kind: PickerKind, items: Vec<Item>) -> Picker {
        let mut p = Picker { kind, query: String::new(), items, shown: Vec::new(), selected: 0, searching: false };
        p.rank();
        p
    }

    pub fn set_items(&mut self, items: Vec<Item>) {
        self.items = items;
        self.searching = false;
        self.rank();
    }

    pub fn set_query(&mut self, query: String) {
        self.query = query;
        self.rank();
    }

    pub fn shown(&self) -> impl Iterator<Item = &Item> {
        self.shown.iter().map(|&i| &self.items[i])
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    pub fn current(&self) -> Option<&Item> {
        self.shown.get(self.selected).map(|&i| &self.items[i])
    }

    pub fn move_by(&mut self, delta: isize) {
        if self.shown.is_empty() {
            return;
        }
        self.selected = (self.selected as isize + delta).clamp(0, self.shown.len() as isize - 1) as usize;
    }

    fn rank(&mut self) {
        self.selected = 0;
        if self.query.trim().is_empty() {
            self.shown = (0..self.items.len()).collect();
            return;
        }
        let pattern = Pattern::parse(&self.query, CaseMatching::Ignore, Normalization::Smart);
        let mut matcher = Matcher::new(Config::DEFAULT);
        let mut buf = Vec::new();
        let mut scored: Vec<(u32, usize)> = self
            .items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| pattern.score(Utf32Str::new(&item.value, &mut buf), &mut matcher).map(|s| (s, i)))
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        self.shown = scored.into_iter().map(|(_, i)| i).collect();
    }
}
