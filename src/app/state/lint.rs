//! The lint view's state: the findings, their tree and what is open
//! (`lint_view` has the keys and view).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use ratatui::layout::Rect;

use crate::domain::lint::{Finding, Scope, Severity};

/// How far a lint run has got: what one page adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LintPage {
    /// The account id to start the next page after; None: this was the last.
    pub next: Option<i64>,
    /// Settings judged in this page.
    pub checked: u64,
    /// Settings in all (given by the first page).
    pub total: u64,
    /// Settings the database withholds from this login's operator: not linted.
    pub hidden: usize,
    /// Settings whose key this login reads masked (L008 cannot look).
    pub masked: usize,
    /// (slug, name) of the accounts the page's findings are about.
    pub names: Vec<(String, String)>,
}

/// Which account a finding is about, as the tree orders them: no account
/// (system-wide) first, then the fallback chain's accounts in chain order,
/// then tenants in the order lint reached them; the last number is the
/// slug's index (`NO_ACCOUNT` for none).
pub(in crate::app) type AccountKey = (Scope, u32, u32);
pub(in crate::app) const NO_ACCOUNT: u32 = u32::MAX;

/// A row of the view: a level's heading, a rule's under it, an account's
/// under that, or a finding (its index; `nested` when under an account's
/// heading — an account with one finding shows it on the rule's level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(in crate::app) enum Row {
    Level(Severity),
    Rule(Severity, &'static str),
    Account(Severity, &'static str, AccountKey),
    Finding(u32, bool),
}

/// Where a rule's findings are: system-wide ones, system accounts, tenants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(in crate::app) struct Places {
    pub(in crate::app) system_wide: bool,
    pub(in crate::app) system: usize,
    pub(in crate::app) tenants: usize,
}

#[derive(Debug)]
pub struct LintView {
    /// Every finding, in the order they came.
    pub findings: Vec<Finding>,
    /// Index into the rows shown.
    pub selected: usize,
    pub request: u64,
    pub loading: bool,
    /// The filter (`/`): every word must be in the rule id, the account's
    /// slug or name, or the message.
    pub filter: String,
    /// Typing goes to the filter.
    pub filtering: bool,
    /// The fallback chain's slugs and positions (a finding about one is a
    /// system account's).
    pub(in crate::app) system: HashMap<String, u32>,
    /// Account names by slug, for the filter and the headings.
    pub(in crate::app) names: HashMap<String, String>,
    /// Slugs seen, by index (an account's key holds its index).
    pub(in crate::app) slugs: Vec<String>,
    pub(in crate::app) slug_ids: HashMap<String, u32>,
    /// The tree: (level, rule) → account → findings, in arrival order.
    pub(in crate::app) tree: BTreeMap<(Severity, &'static str), BTreeMap<AccountKey, Vec<u32>>>,
    /// Headings opened (true) or closed by hand: they stay so, whatever
    /// their default (a filter opens small groups).
    pub(in crate::app) toggled: HashMap<Row, bool>,
    pub(in crate::app) rows: Vec<Row>,
    /// Per heading shown: (findings matching the filter, in all).
    pub(in crate::app) counts: HashMap<Row, (usize, usize)>,
    /// Per level shown: how many rules match; per rule: where its matches are.
    pub(in crate::app) rules_in: HashMap<Severity, usize>,
    pub(in crate::app) places: HashMap<Row, Places>,
    pub(in crate::app) checked: u64,
    pub(in crate::app) total: u64,
    pub(in crate::app) hidden: usize,
    pub(in crate::app) masked: usize,
    /// Why the run stopped before the end, if it did.
    pub(in crate::app) stopped: Option<String>,
    /// A change arrived after the findings were read (live notices): the
    /// list says so until it is read again.
    pub stale: bool,
    /// Where the list was drawn last (its rows' area) and its first row,
    /// for the mouse.
    pub(in crate::app) list_at: Cell<Option<(Rect, usize)>>,
}

/// A rule with this many findings or fewer is open unless closed by hand.
pub(in crate::app) const OPEN_UP_TO: usize = 25;
/// An account's heading with this many or fewer is open unless closed.
pub(in crate::app) const ACCOUNT_OPEN_UP_TO: usize = 10;

impl LintView {
    pub(in crate::app) fn new(request: u64, system: HashMap<String, u32>) -> LintView {
        LintView {
            findings: Vec::new(),
            selected: 0,
            request,
            loading: true,
            filter: String::new(),
            filtering: false,
            system,
            names: HashMap::new(),
            slugs: Vec::new(),
            slug_ids: HashMap::new(),
            tree: BTreeMap::new(),
            toggled: HashMap::new(),
            rows: Vec::new(),
            counts: HashMap::new(),
            rules_in: HashMap::new(),
            places: HashMap::new(),
            checked: 0,
            total: 0,
            hidden: 0,
            masked: 0,
            stopped: None,
            stale: false,
            list_at: Cell::new(None),
        }
    }

    pub(in crate::app) fn account_key(&mut self, slug: Option<&str>) -> AccountKey {
        let Some(slug) = slug else { return (Scope::SystemWide, 0, NO_ACCOUNT) };
        let id = match self.slug_ids.get(slug) {
            Some(id) => *id,
            None => {
                let id = self.slugs.len() as u32;
                self.slugs.push(slug.to_string());
                self.slug_ids.insert(slug.to_string(), id);
                id
            }
        };
        match self.system.get(slug) {
            Some(position) => (Scope::SystemAccount, *position, id),
            None => (Scope::Tenant, 0, id),
        }
    }

    /// Add a page's findings, keeping the selection on the same row.
    pub fn add(&mut self, findings: Vec<Finding>, page: &LintPage) {
        for f in findings {
            let key = self.account_key(f.account.as_deref());
            self.tree.entry((f.severity, f.id)).or_default().entry(key).or_default().push(self.findings.len() as u32);
            self.findings.push(f);
        }
        self.names.extend(page.names.iter().cloned());
        self.checked += page.checked;
        self.total = self.total.max(page.total);
        self.hidden += page.hidden;
        self.masked += page.masked;
        let first = self.rows.is_empty();
        self.rebuild();
        // On the first page, the first finding rather than a heading.
        if first && let Some(at) = self.rows.iter().position(|r| matches!(r, Row::Finding(..))) {
            self.selected = at;
        }
    }

    /// The finding selected, if a finding (not a heading) is.
    pub fn current(&self) -> Option<&Finding> {
        match self.rows.get(self.selected) {
            Some(Row::Finding(i, _)) => self.findings.get(*i as usize),
            _ => None,
        }
    }

    /// How many rows are shown (headings and open groups' findings).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// An account's slug, or "system-wide" for none.
    pub(in crate::app) fn slug(&self, key: AccountKey) -> &str {
        self.slugs.get(key.2 as usize).map(String::as_str).unwrap_or("system-wide")
    }

    /// The rows as text, for tests: headings as "▾ error 2/2",
    /// "  ▾ L006 1/1", "    ▸ paid-2 3/3" (mark, what, matching/all),
    /// findings as their message.
    pub fn row_texts(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| {
                let (shown, all) = self.counts.get(r).copied().unwrap_or_default();
                let mark = self.mark(r, shown);
                match r {
                    Row::Level(s) => format!("{mark} {} {shown}/{all}", word(*s)),
                    Row::Rule(_, id) => format!("  {mark} {id} {shown}/{all}"),
                    Row::Account(_, _, key) => format!("    {mark} {} {shown}/{all}", self.slug(*key)),
                    Row::Finding(i, _) => self.findings[*i as usize].message.clone(),
                }
            })
            .collect()
    }

    pub fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.rebuild();
        self.selected = self.rows.iter().position(|r| matches!(r, Row::Finding(..))).unwrap_or(0);
    }

    pub(in crate::app) fn open(&self, row: &Row, shown: usize) -> bool {
        let filtered = !self.filter.trim().is_empty();
        let default = match row {
            Row::Level(_) => true,
            Row::Rule(..) => shown <= OPEN_UP_TO || (filtered && shown <= 10 * OPEN_UP_TO),
            Row::Account(..) => shown <= ACCOUNT_OPEN_UP_TO || filtered,
            Row::Finding(..) => return false,
        };
        self.toggled.get(row).copied().unwrap_or(default)
    }

    pub(in crate::app) fn mark(&self, row: &Row, shown: usize) -> &'static str {
        match row {
            Row::Finding(..) => "",
            _ if self.open(row, shown) => "▾",
            _ => "▸",
        }
    }

    pub(in crate::app) fn matches(&self, f: &Finding, words: &[String]) -> bool {
        words.iter().all(|w| {
            let has = |text: &str| text.to_lowercase().contains(w.as_str());
            has(f.id)
                || f.account
                    .as_deref()
                    .is_some_and(|slug| has(slug) || self.names.get(slug).is_some_and(|name| has(name)))
                || f.integration_type.as_deref().is_some_and(has)
                || f.user.as_deref().is_some_and(has)
                || has(&f.message)
        })
    }

    /// The rows again (after new findings, a filter or a heading opened),
    /// the selection kept on the same row when it is still there. Levels in
    /// order (errors first); in a level, the rules about no account or a
    /// system account first, then by id; in a rule, its accounts in the
    /// tree's order.
    pub(in crate::app) fn rebuild(&mut self) {
        let keep = self.rows.get(self.selected).copied();
        let words: Vec<String> = self.filter.split_whitespace().map(str::to_lowercase).collect();
        struct Shown {
            id: &'static str,
            accounts: Vec<(AccountKey, Vec<u32>, usize)>,
            shown: usize,
            all: usize,
        }
        let mut levels: BTreeMap<Severity, (Vec<Shown>, usize)> = BTreeMap::new();
        for (&(severity, id), accounts) in &self.tree {
            let mut rule = Shown { id, accounts: Vec::new(), shown: 0, all: 0 };
            for (&key, members) in accounts {
                rule.all += members.len();
                let shown: Vec<u32> = if words.is_empty() {
                    members.clone()
                } else {
                    members.iter().copied().filter(|&i| self.matches(&self.findings[i as usize], &words)).collect()
                };
                if !shown.is_empty() {
                    rule.shown += shown.len();
                    rule.accounts.push((key, shown, members.len()));
                }
            }
            let level = levels.entry(severity).or_default();
            level.1 += rule.all;
            if rule.shown > 0 {
                level.0.push(rule);
            }
        }
        let mut rows = Vec::new();
        let mut counts = HashMap::new();
        let mut places = HashMap::new();
        let mut rules_in = HashMap::new();
        for (severity, (mut rules, all)) in levels {
            if rules.is_empty() {
                continue;
            }
            rules.sort_by_key(|r| (r.accounts.first().map(|a| a.0.0), r.id));
            let level = Row::Level(severity);
            let shown: usize = rules.iter().map(|r| r.shown).sum();
            counts.insert(level, (shown, all));
            rules_in.insert(severity, rules.len());
            rows.push(level);
            if !self.open(&level, shown) {
                continue;
            }
            for r in rules {
                let rule = Row::Rule(severity, r.id);
                counts.insert(rule, (r.shown, r.all));
                let mut at = Places::default();
                for (key, _, _) in &r.accounts {
                    match key.0 {
                        Scope::SystemWide => at.system_wide = true,
                        Scope::SystemAccount => at.system += 1,
                        Scope::Tenant => at.tenants += 1,
                    }
                }
                places.insert(rule, at);
                rows.push(rule);
                if !self.open(&rule, r.shown) {
                    continue;
                }
                for (key, members, all) in r.accounts {
                    if members.len() == 1 {
                        rows.push(Row::Finding(members[0], false));
                        continue;
                    }
                    let account = Row::Account(severity, r.id, key);
                    counts.insert(account, (members.len(), all));
                    rows.push(account);
                    if self.open(&account, members.len()) {
                        rows.extend(members.into_iter().map(|i| Row::Finding(i, true)));
                    }
                }
            }
        }
        self.rows = rows;
        self.counts = counts;
        self.places = places;
        self.rules_in = rules_in;
        let same = |a: &Row, b: &Row| match (a, b) {
            (Row::Finding(x, _), Row::Finding(y, _)) => x == y,
            _ => a == b,
        };
        self.selected = keep
            .and_then(|k| self.rows.iter().position(|r| same(r, &k)))
            .unwrap_or(self.selected.min(self.rows.len().saturating_sub(1)));
    }

    /// Open or close the selected heading (it keeps the selection).
    pub(in crate::app) fn toggle(&mut self) {
        let Some(row) = self.rows.get(self.selected).copied() else { return };
        if matches!(row, Row::Finding(..)) {
            return;
        }
        let (shown, _) = self.counts.get(&row).copied().unwrap_or_default();
        let open = self.open(&row, shown);
        self.toggled.insert(row, !open);
        self.rebuild();
    }
}

pub(in crate::app) fn word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}
