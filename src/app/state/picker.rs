//! A picker's state and the user search in flight (`picker` has the keys
//! and view).

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};
use ratatui::layout::Rect;

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
    pub(in crate::app) items: Vec<Item>,
    /// Indices into `items` that match `query`, best first.
    pub(in crate::app) shown: Vec<usize>,
    pub selected: usize,
    /// A search is in flight (users only).
    pub searching: bool,
    /// The query `items` holds every match of (users: the database found
    /// fewer than a page), so a query that contains it is answered here.
    pub complete_for: Option<String>,
    /// Where the list was drawn last (its rows' area) and its first row,
    /// for the mouse.
    pub(in crate::app) list_at: std::cell::Cell<Option<(Rect, usize)>>,
}

impl Picker {
    pub fn new(kind: PickerKind, items: Vec<Item>) -> Picker {
        let mut p = Picker {
            kind,
            query: String::new(),
            items,
            shown: Vec::new(),
            selected: 0,
            searching: false,
            complete_for: None,
            list_at: std::cell::Cell::new(None),
        };
        p.rank();
        p
    }

    pub fn set_items(&mut self, items: Vec<Item>) {
        self.items = items;
        self.searching = false;
        self.rank();
    }

    /// Whether `query` can be answered from the items alone: they are every
    /// user containing an earlier query that `query` contains (ASCII only,
    /// where lowercasing here and in the database agree).
    pub fn answers_locally(&self, query: &str) -> bool {
        self.complete_for
            .as_deref()
            .is_some_and(|done| query.is_ascii() && query.to_ascii_lowercase().contains(&done.to_ascii_lowercase()))
    }

    /// Keep the items that contain `query` (any case), as the database's
    /// substring search would.
    pub fn narrow_to(&mut self, query: &str) {
        let needle = query.to_ascii_lowercase();
        self.items.retain(|i| i.value.to_lowercase().contains(&needle));
        self.complete_for = Some(query.to_string());
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

    pub(in crate::app) fn rank(&mut self) {
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

/// The user search in flight, and the newest query typed meanwhile: one
/// search at a time, so fast typing never queues scans of 1,000,000 users
/// behind each other.
#[derive(Debug, Default)]
pub struct UserSearch {
    pub(in crate::app) inflight: Option<String>,
    pub(in crate::app) queued: Option<String>,
}
