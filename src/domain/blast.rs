//! The blast radius of a key over time (issue 23, point 3), purely: the
//! world at one moment, replayed forward change by change, and for each
//! settings row that held the key, who resolved to it between changes —
//! exact at every change, not only when a stretch began.
//!
//! Who resolves to a row is walked by the one resolver (`resolve_type`) for
//! every start account × function type. A change is cheap because of the
//! walk's shape: an account's walk is its own row first, then the chain
//! (without it). So an account's answer depends only on its own settings
//! and on the chain's walks from no account (`ChainSig`, what each type's
//! walk from the chain answers, with which row, whether it raises, and the
//! provider it names). A change re-walks the account it touched; only when
//! the chain's walks change (a chain account's setting, the chain, a slug
//! the chain names, the function table) is every account re-walked.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::history::{Held, Window, stamp};
use super::model::{Account, ChainEntry, Setting};
use super::resolve::{Hop, Rules, Snapshot, resolve_type};
use super::text::{visible, visible_short};

/// A settings row whose resolvers are tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub setting_id: i64,
    pub account_id: i64,
    pub integration_type: String,
}

/// One recorded change, in the order of the log.
#[derive(Debug, Clone)]
pub enum Event {
    /// A settings row as it is after the change (`None`: deleted).
    Setting { id: i64, after: Option<Setting> },
    /// A chain position: its slug before and after.
    Chain { before: Option<i64>, after: Option<(i64, String)> },
    /// A function → type row: its name before, and the row after.
    Function { before: Option<String>, after: Option<(String, String)> },
    /// An account as it is after the change (`None`: deleted).
    Account { id: i64, after: Option<Account> },
    /// A user's account before and after (outer `None`: no row).
    User { before: Option<Option<i64>>, after: Option<Option<i64>> },
    /// Something no answer depends on (the policy): nothing to do.
    Nothing,
}

/// Where a change of a row's answer happened: the audit entry (for the
/// replay's start, the last entry applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub entry: i64,
    pub at: DateTime<Utc>,
}

/// A moment the answer for one row changed, and how: the accounts that
/// began and stopped resolving to it (by id, with their slug then), the
/// users of every account resolving to it, and the functions.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub mark: Mark,
    pub joined: Vec<(Option<i64>, String)>,
    pub left: Vec<(Option<i64>, String)>,
    pub users: i64,
    /// The users without an account, where their walk (the chain's) lands
    /// on the row; `None` where it does not.
    pub no_account: Option<i64>,
    pub functions: Vec<String>,
}

/// The name shown for users without an account (they walk the chain).
pub const NO_ACCOUNT: &str = "(users without an account)";

/// The world as the walk reads it, kept up to date change by change.
pub struct Replay {
    snapshot: Snapshot,
    /// Every settings row's (account, type) by id. `snapshot.settings`
    /// holds the lowest id of each pair, as the app reads; `spare` the
    /// others (pairs with several rows): one copy of each row.
    rows: HashMap<i64, (i64, String)>,
    spare: HashMap<i64, Setting>,
    pairs: HashMap<(i64, String), BTreeSet<i64>>,
    /// How many rows of each type: every type a second hop could walk.
    row_types: BTreeMap<String, usize>,
    chain: BTreeMap<i64, String>,
    by_slug: HashMap<String, i64>,
    functions: HashMap<String, String>,
    /// The function types, distinct, in order.
    types: Vec<String>,
    users: HashMap<Option<i64>, i64>,
    targets: Vec<Tracked>,
    sig: ChainSig,
}

/// What the walks from the chain answer, per type: who, with which row,
/// whether it raises, the provider named.
type ChainSig = BTreeMap<String, (Option<String>, Option<i64>, bool, Option<String>)>;

struct Tracked {
    target: Target,
    /// Start account → the function types whose walk lands on the row, and
    /// the account's slug.
    landing: HashMap<Option<i64>, (BTreeSet<String>, String)>,
    /// As last reported.
    shown: HashMap<Option<i64>, String>,
    shown_users: i64,
    shown_functions: Vec<String>,
    users: i64,
    type_count: HashMap<String, usize>,
    touched: HashSet<Option<i64>>,
    points: Vec<Point>,
}

impl Replay {
    /// The world at the replay's start: the chain (position → slug), the
    /// accounts, every settings row, the function map, the user count of
    /// each account (`None`: users without one), and the rows to track.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rules: Rules,
        chain: BTreeMap<i64, String>,
        accounts: Vec<Account>,
        settings: Vec<Setting>,
        functions: HashMap<String, String>,
        users: HashMap<Option<i64>, i64>,
        targets: Vec<Target>,
        start: Mark,
    ) -> Replay {
        let by_slug = accounts.iter().map(|a| (a.slug.clone(), a.id)).collect();
        // By id (a row given twice: the later), then the lowest id of each
        // pair kept, the others spare.
        let mut by_id: BTreeMap<i64, Setting> = BTreeMap::new();
        for s in settings {
            by_id.insert(s.id, s);
        }
        let mut pairs: HashMap<(i64, String), BTreeSet<i64>> = HashMap::new();
        let mut row_types: BTreeMap<String, usize> = BTreeMap::new();
        let mut rows = HashMap::with_capacity(by_id.len());
        let mut kept: HashMap<(i64, String), Setting> = HashMap::new();
        let mut spare = HashMap::new();
        for (id, s) in by_id {
            let pair = (s.account_id, s.integration_type.clone());
            pairs.entry(pair.clone()).or_default().insert(id);
            *row_types.entry(s.integration_type.clone()).or_default() += 1;
            rows.insert(id, pair.clone());
            match kept.entry(pair) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(s);
                }
                std::collections::hash_map::Entry::Occupied(_) => {
                    spare.insert(id, s);
                }
            }
        }
        let several = pairs
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(pair, ids)| (pair.clone(), ids.iter().copied().collect()))
            .collect();
        let snapshot = Snapshot { rules, settings: kept, several, ..Snapshot::new(Vec::new(), accounts, Vec::new()) };
        let mut r = Replay {
            snapshot,
            rows,
            spare,
            pairs,
            row_types,
            chain,
            by_slug,
            types: functions.values().cloned().collect::<BTreeSet<String>>().into_iter().collect(),
            functions,
            users,
            targets: targets
                .into_iter()
                .map(|target| Tracked {
                    target,
                    landing: HashMap::new(),
                    shown: HashMap::new(),
                    shown_users: 0,
                    shown_functions: Vec::new(),
                    users: 0,
                    type_count: HashMap::new(),
                    touched: HashSet::new(),
                    points: Vec::new(),
                })
                .collect(),
            sig: ChainSig::new(),
        };
        r.rebuild_chain();
        r.sig = r.chain_sig();
        r.walk_all();
        r.report(start, true);
        r
    }

    /// Apply one change, recorded at `mark`, and note where any row's
    /// answer changed.
    pub fn apply(&mut self, mark: Mark, event: Event) {
        let mut walk: Vec<Option<i64>> = Vec::new();
        let mut check_chain = false;
        let mut all = false;
        match event {
            Event::Nothing => return,
            Event::Setting { id, after } => {
                if let Some(pair) = self.rows.remove(&id) {
                    if let Some(n) = self.row_types.get_mut(&pair.1) {
                        *n -= 1;
                        if *n == 0 {
                            self.row_types.remove(&pair.1);
                        }
                    }
                    if let Some(ids) = self.pairs.get_mut(&pair) {
                        ids.remove(&id);
                    }
                    self.spare.remove(&id);
                    if self.snapshot.settings.get(&pair).is_some_and(|s| s.id == id) {
                        self.snapshot.settings.remove(&pair);
                    }
                    walk.push(Some(pair.0));
                    self.refresh_pair(pair);
                }
                if let Some(new) = after {
                    let pair = (new.account_id, new.integration_type.clone());
                    walk.push(Some(new.account_id));
                    *self.row_types.entry(new.integration_type.clone()).or_default() += 1;
                    self.pairs.entry(pair.clone()).or_default().insert(id);
                    self.rows.insert(id, pair.clone());
                    self.spare.insert(id, new);
                    self.refresh_pair(pair);
                }
                // Only a chain account's row can change the chain's walks.
                check_chain = walk.iter().flatten().any(|id| self.in_chain(*id));
            }
            Event::Chain { before, after } => {
                if let Some(p) = before {
                    self.chain.remove(&p);
                }
                if let Some((p, slug)) = after {
                    self.chain.insert(p, slug);
                }
                self.rebuild_chain();
                check_chain = true;
            }
            Event::Function { before, after } => {
                if let Some(name) = before {
                    self.functions.remove(&name);
                }
                if let Some((name, ty)) = after {
                    self.functions.insert(name, ty);
                }
                self.types = self.functions.values().cloned().collect::<BTreeSet<String>>().into_iter().collect();
                all = true;
            }
            Event::Account { id, after } => {
                if let Some(old) = self.snapshot.accounts.remove(&id)
                    && self.by_slug.get(&old.slug) == Some(&id)
                {
                    self.by_slug.remove(&old.slug);
                }
                if let Some(a) = after {
                    self.by_slug.insert(a.slug.clone(), id);
                    self.snapshot.accounts.insert(id, a);
                }
                self.rebuild_chain();
                walk.push(Some(id));
                check_chain = true;
            }
            Event::User { before, after } => {
                if let Some(a) = before {
                    *self.users.entry(a).or_default() -= 1;
                    for t in &mut self.targets {
                        if t.landing.contains_key(&a) {
                            t.users -= 1;
                        }
                    }
                }
                if let Some(a) = after {
                    *self.users.entry(a).or_default() += 1;
                    for t in &mut self.targets {
                        if t.landing.contains_key(&a) {
                            t.users += 1;
                        }
                    }
                }
            }
        }
        if check_chain && !all {
            let sig = self.chain_sig();
            if sig != self.sig {
                self.sig = sig;
                all = true;
            }
        }
        if all {
            self.sig = self.chain_sig();
            self.walk_all();
        } else {
            for a in walk {
                self.walk_one(a);
            }
        }
        self.report(mark, false);
    }

    /// Each tracked row's changes of answer, in order (the first at the
    /// replay's start), in the order the rows were given.
    pub fn finish(self) -> Vec<Vec<Point>> {
        self.targets.into_iter().map(|t| t.points).collect()
    }

    /// The one kept row of a pair (the lowest id, as the app's `.first()`),
    /// the others spare, and the pair's several rows where there are several.
    fn refresh_pair(&mut self, pair: (i64, String)) {
        let ids: Vec<i64> = self.pairs.get(&pair).map(|s| s.iter().copied().collect()).unwrap_or_default();
        let lowest = ids.first().copied();
        if self.snapshot.settings.get(&pair).map(|s| s.id) != lowest {
            if let Some(old) = self.snapshot.settings.remove(&pair)
                && self.rows.get(&old.id) == Some(&pair)
            {
                self.spare.insert(old.id, old);
            }
            if let Some(s) = lowest.and_then(|id| self.spare.remove(&id)) {
                self.snapshot.settings.insert(pair.clone(), s);
            }
        }
        if ids.len() > 1 {
            self.snapshot.several.insert(pair, ids);
        } else {
            self.snapshot.several.remove(&pair);
            if ids.is_empty() {
                self.pairs.remove(&pair);
            }
        }
    }

    fn in_chain(&self, account_id: i64) -> bool {
        self.snapshot.chain.iter().any(|e| e.account.as_ref().is_some_and(|a| a.id == account_id))
    }

    fn rebuild_chain(&mut self) {
        self.snapshot.chain = self
            .chain
            .iter()
            .map(|(p, slug)| ChainEntry {
                position: *p as i32,
                slug: slug.clone(),
                account: self.by_slug.get(slug).and_then(|id| self.snapshot.accounts.get(id)).cloned(),
            })
            .collect();
    }

    fn chain_sig(&self) -> ChainSig {
        let mut todo: Vec<String> = self.types.clone();
        todo.extend(self.targets.iter().map(|t| t.target.integration_type.clone()));
        todo.extend(self.row_types.keys().cloned());
        let mut sig = ChainSig::new();
        while let Some(ty) = todo.pop() {
            if sig.contains_key(&ty) {
                continue;
            }
            let hop = resolve_type(&self.snapshot, None, &ty);
            let row = hop
                .answered_by
                .as_ref()
                .and_then(|slug| self.by_slug.get(slug))
                .and_then(|id| self.snapshot.settings.get(&(*id, ty.clone())))
                .map(|s| s.id);
            let next = hop.hop.as_ref().map(|h| h.integration_type.clone());
            if let Some(n) = &next {
                todo.push(n.clone());
            }
            sig.insert(ty, (hop.answered_by.clone(), row, hop.error.is_some(), next));
        }
        sig
    }

    fn walk_all(&mut self) {
        let mut ids: Vec<Option<i64>> = self.snapshot.accounts.keys().copied().map(Some).collect();
        ids.push(None);
        // Accounts that left the world still have an answer to take back.
        for t in &self.targets {
            ids.extend(
                t.landing.keys().copied().filter(|k| k.is_some_and(|id| !self.snapshot.accounts.contains_key(&id))),
            );
        }
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            self.walk_one(id);
        }
    }

    /// Walk every function type from `start` and update which rows it lands on.
    fn walk_one(&mut self, start: Option<i64>) {
        let account = match start {
            Some(id) => match self.snapshot.accounts.get(&id) {
                Some(a) => Some(a),
                None => {
                    // Gone: it resolves to nothing any more.
                    for t in &mut self.targets {
                        set_landing(t, start, BTreeSet::new(), String::new(), &self.users);
                    }
                    return;
                }
            },
            None => None,
        };
        let slug = account.map(|a| a.slug.clone()).unwrap_or_else(|| NO_ACCOUNT.to_string());
        let mut lands: Vec<BTreeSet<String>> = vec![BTreeSet::new(); self.targets.len()];
        for ty in &self.types {
            let hop = resolve_type(&self.snapshot, account, ty);
            for (i, t) in self.targets.iter().enumerate() {
                if lands_on(&self.snapshot, &hop, &t.target) {
                    lands[i].insert(ty.clone());
                }
            }
        }
        for (t, set) in self.targets.iter_mut().zip(lands) {
            set_landing(t, start, set, slug.clone(), &self.users);
        }
    }

    /// Record a point for each row whose answer changed since the last.
    fn report(&mut self, mark: Mark, first: bool) {
        for t in &mut self.targets {
            let mut functions: Vec<String> = self
                .functions
                .iter()
                .filter(|(_, ty)| t.type_count.get(*ty).is_some_and(|n| *n > 0))
                .map(|(f, _)| f.clone())
                .collect();
            functions.sort();
            let no_account = t.landing.contains_key(&None).then(|| self.users.get(&None).copied().unwrap_or(0));
            let mut joined = Vec::new();
            let mut left = Vec::new();
            for id in t.touched.drain() {
                let now = t.landing.get(&id).map(|(_, slug)| slug);
                let was = t.shown.get(&id);
                if now == was {
                    continue;
                }
                if let Some(w) = was {
                    left.push((id, w.clone()));
                }
                match now {
                    Some(n) => {
                        joined.push((id, n.clone()));
                        t.shown.insert(id, n.clone());
                    }
                    None => {
                        t.shown.remove(&id);
                    }
                }
            }
            if first
                || !joined.is_empty()
                || !left.is_empty()
                || t.users != t.shown_users
                || t.points.last().is_some_and(|p| p.no_account != no_account)
                || functions != t.shown_functions
            {
                joined.sort();
                left.sort();
                t.shown_users = t.users;
                t.shown_functions = functions.clone();
                t.points.push(Point { mark, joined, left, users: t.users, no_account, functions });
            }
        }
    }
}

fn set_landing(
    t: &mut Tracked,
    start: Option<i64>,
    set: BTreeSet<String>,
    slug: String,
    users: &HashMap<Option<i64>, i64>,
) {
    let count = users.get(&start).copied().unwrap_or(0);
    let old = if set.is_empty() { t.landing.remove(&start) } else { t.landing.insert(start, (set.clone(), slug)) };
    if let Some((old_set, _)) = &old {
        for ty in old_set {
            if let Some(n) = t.type_count.get_mut(ty) {
                *n -= 1;
            }
        }
        t.users -= count;
    }
    if !set.is_empty() {
        for ty in &set {
            *t.type_count.entry(ty.clone()).or_default() += 1;
        }
        t.users += count;
    }
    t.touched.insert(start);
}

/// Whether a walk ends on the tracked row, without the app raising: it or
/// its second hop answered by the row's account with that very row (the
/// lowest id of its pair, as the app reads).
pub fn lands_on(snapshot: &Snapshot, hop: &Hop, target: &Target) -> bool {
    let Some(owner) = snapshot.accounts.get(&target.account_id) else { return false };
    let kept = snapshot.settings.get(&(target.account_id, target.integration_type.clone())).map(|s| s.id);
    if kept != Some(target.setting_id) || hop.raises().is_some() {
        return false;
    }
    let ends = |h: &Hop| h.integration_type == target.integration_type && h.answered_by.as_deref() == Some(&owner.slug);
    ends(hop) || hop.hop.as_ref().is_some_and(|h| ends(h))
}

/// Who resolves to `target` in `snapshot`, walked from scratch for every
/// account and users without one: (start account → its slug, the users
/// counted, the functions) — the brute force the replay is held to.
pub fn who_resolves(
    snapshot: &Snapshot,
    functions: &HashMap<String, String>,
    users: &HashMap<Option<i64>, i64>,
    target: &Target,
) -> (BTreeMap<Option<i64>, String>, i64, Vec<String>) {
    let mut accounts = BTreeMap::new();
    let mut names = BTreeSet::new();
    let mut count = 0;
    let mut ids: Vec<Option<i64>> = snapshot.accounts.keys().copied().map(Some).collect();
    ids.push(None);
    for id in ids {
        let account = id.and_then(|id| snapshot.accounts.get(&id));
        let mut any = false;
        for (name, ty) in functions {
            if lands_on(snapshot, &resolve_type(snapshot, account, ty), target) {
                any = true;
                names.insert(name.clone());
            }
        }
        if any {
            count += users.get(&id).copied().unwrap_or(0);
            accounts.insert(id, account.map(|a| a.slug.clone()).unwrap_or_else(|| NO_ACCOUNT.to_string()));
        }
    }
    (accounts, count, names.into_iter().collect())
}

/// One interval of a stretch: from one change to the next, who resolved to
/// the row — or that keyfall cannot vouch for it, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// `None`: before history began.
    pub from: Option<DateTime<Utc>>,
    pub from_entry: Option<i64>,
    /// `None`: still so now.
    pub to: Option<DateTime<Utc>>,
    pub to_entry: Option<i64>,
    /// Set where keyfall cannot vouch for who resolved to it; the rest is
    /// then empty.
    pub cannot_vouch: Option<String>,
    /// How many accounts (tenants) resolved to it; users without an
    /// account are not one (`users_without_account`).
    pub tenants: usize,
    /// `tenants`, plus one where users without an account resolve to it:
    /// the count `--json` gave as `accounts` before `tenants`, kept for
    /// its `format_version` 1 (README: a field's meaning does not change).
    pub accounts: usize,
    /// The accounts that began resolving to it here (in the first interval
    /// vouched for, all of them), and those that stopped.
    pub joined: Vec<String>,
    pub left: Vec<String>,
    /// The users resolving to it: those of these accounts, and those
    /// without an account.
    pub users: i64,
    /// Of them, the users without an account, where their walk (the
    /// chain's) lands on the row; `None` where it does not.
    pub users_without_account: Option<i64>,
    pub functions: Vec<String>,
}

/// Where the replay can vouch from: just after entry `entry` (`at`); what
/// lies before is unknown for `why_before` (before history) or `why_gap`
/// (between history's start `start_entry` and `entry`: a gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Vouched {
    pub entry: i64,
    pub at: DateTime<Utc>,
    pub start_entry: i64,
    pub start_at: DateTime<Utc>,
    pub why_gap: Option<String>,
}

/// A stretch's intervals: the row held the key from `from` to `to` (entry
/// and time; `None`: before history / still now); `points` the row's
/// changes of answer from the replay (`vouched: None`: nothing can be
/// vouched for, `unknown` says why).
pub fn intervals(
    from: (Option<i64>, Option<DateTime<Utc>>),
    to: (Option<i64>, Option<DateTime<Utc>>),
    points: &[Point],
    vouched: Option<&Vouched>,
    unknown: &str,
) -> Vec<Interval> {
    let blank =
        |from: (Option<i64>, Option<DateTime<Utc>>), to: (Option<i64>, Option<DateTime<Utc>>), why: String| Interval {
            from: from.1,
            from_entry: from.0,
            to: to.1,
            to_entry: to.0,
            cannot_vouch: Some(why),
            tenants: 0,
            accounts: 0,
            joined: Vec::new(),
            left: Vec::new(),
            users: 0,
            users_without_account: None,
            functions: Vec::new(),
        };
    let Some(v) = vouched else { return vec![blank(from, to, unknown.to_string())] };
    let mut out = Vec::new();
    // Whether the stretch starts before entry `n`, and ends after it.
    let starts_before = |n: i64| from.0.is_none_or(|e| e < n);
    let ends_after = |n: i64| to.0.is_none_or(|t| t > n);
    // Before history began.
    if starts_before(v.start_entry) {
        let end = if ends_after(v.start_entry) { (Some(v.start_entry), Some(v.start_at)) } else { to };
        out.push(blank(from, end, "before history began: keyfall does not know".into()));
    }
    // Between history's start and the end of the latest gap.
    if let Some(why) = &v.why_gap
        && starts_before(v.entry)
        && ends_after(v.start_entry)
    {
        let start = if starts_before(v.start_entry) { (Some(v.start_entry), Some(v.start_at)) } else { from };
        let end = if ends_after(v.entry) { (Some(v.entry), Some(v.at)) } else { to };
        out.push(blank(start, end, why.clone()));
    }
    if !ends_after(v.entry) {
        return out;
    }
    // Vouched for: from the later of the stretch's start and the vouched start.
    let begin = match from.0 {
        Some(e) if e > v.entry => (Some(e), from.1),
        _ => (Some(v.entry), Some(v.at)),
    };
    let first = begin.0.unwrap_or(v.entry);
    let mut set: BTreeMap<Option<i64>, String> = BTreeMap::new();
    let mut current: Option<Interval> = None;
    for p in points {
        if to.0.is_some_and(|t| p.mark.entry >= t) {
            break;
        }
        for (id, _) in &p.left {
            set.remove(id);
        }
        for (id, slug) in &p.joined {
            set.insert(*id, slug.clone());
        }
        if p.mark.entry <= first {
            // Still before the interval starts: the state accumulates.
            current = Some(Interval {
                from: begin.1,
                from_entry: begin.0,
                to: None,
                to_entry: None,
                cannot_vouch: None,
                tenants: tenants(&set),
                accounts: set.len(),
                joined: set.values().cloned().collect(),
                left: Vec::new(),
                users: p.users,
                users_without_account: p.no_account,
                functions: p.functions.clone(),
            });
            continue;
        }
        if let Some(mut c) = current.take() {
            c.to = Some(p.mark.at);
            c.to_entry = Some(p.mark.entry);
            out.push(c);
        }
        current = Some(Interval {
            from: Some(p.mark.at),
            from_entry: Some(p.mark.entry),
            to: None,
            to_entry: None,
            cannot_vouch: None,
            tenants: tenants(&set),
            accounts: set.len(),
            joined: p.joined.iter().map(|(_, s)| s.clone()).collect(),
            left: p.left.iter().map(|(_, s)| s.clone()).collect(),
            users: p.users,
            users_without_account: p.no_account,
            functions: p.functions.clone(),
        });
    }
    if let Some(mut c) = current {
        c.to = to.1;
        c.to_entry = to.0;
        out.push(c);
    }
    out
}

/// How many accounts of a set resolving to a row are tenants (users
/// without an account, `None`, are not one).
fn tenants(set: &BTreeMap<Option<i64>, String>) -> usize {
    set.keys().filter(|id| id.is_some()).count()
}

/// One settings row that held the key, with when.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyRow {
    pub setting_id: i64,
    pub account_id: i64,
    /// The account's slug as the log (or, for a row never changed since
    /// history began, the account now) names it.
    pub account: String,
    pub integration_type: String,
    pub held: Vec<Held>,
}

/// One stretch a row held the key, and who resolved to it, interval by
/// interval (`domain::blast::intervals`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stretch {
    pub account: String,
    pub integration_type: String,
    pub setting_id: i64,
    #[serde(flatten)]
    pub held: Held,
    /// Who resolved to it when the stretch began (the first interval keyfall
    /// vouches for); `None` with `unknown` where it vouches for none.
    pub accounts: Option<Vec<String>>,
    pub users: Option<i64>,
    pub functions: Option<Vec<String>>,
    pub unknown: Option<String>,
    /// The gaps of the log inside the stretch.
    pub gaps: Vec<String>,
    /// From change to change: who resolved to it.
    pub intervals: Vec<Interval>,
}

/// The blast radius of a key: what `keyfall key-history` shows, and what
/// the console asks for. The one entry point: `Store::key_history`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyHistory {
    pub fingerprint: String,
    pub history: Window,
    pub rows: Vec<KeyRow>,
    pub stretches: Vec<Stretch>,
}

fn when(t: Option<DateTime<Utc>>, entry: Option<i64>, none: &str) -> String {
    match (t, entry) {
        (Some(t), Some(e)) => format!("{} (#{e})", stamp(t)),
        _ => none.to_string(),
    }
}

/// How a line of the timeline reads: plain, an interval (dim in the
/// console), or a warning (what keyfall cannot vouch for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Plain,
    Interval,
    Warn,
}

/// The blast radius as lines, worded once for `keyfall key-history` and
/// the console's overlay.
pub fn timeline_lines(fp: &str, since: &str, stretches: &[Stretch]) -> Vec<(String, LineKind)> {
    let mut out = Vec::new();
    out.push((format!("key {fp} · {since}"), LineKind::Plain));
    if stretches.is_empty() {
        out.push(("no settings row held it since history began".to_string(), LineKind::Plain));
        return out;
    }
    let list = |names: &[String]| {
        let shown: Vec<String> = names.iter().take(10).map(|a| visible_short(a, 40)).collect();
        let more = names.len().saturating_sub(10);
        format!("{}{}", shown.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
    };
    for s in stretches {
        out.push((
            format!(
                "{} {} {}: {} → {}",
                visible_short(&s.account, 40),
                visible(&s.integration_type),
                visible(&s.held.field),
                when(s.held.from, s.held.from_entry, "before history began"),
                when(s.held.to, s.held.to_entry, "now")
            ),
            LineKind::Plain,
        ));
        let mut first = true;
        for i in &s.intervals {
            let span =
                format!("{} → {}", when(i.from, i.from_entry, "before history began"), when(i.to, i.to_entry, "now"));
            if let Some(why) = &i.cannot_vouch {
                out.push((format!("  {span}: cannot vouch — {}", visible(why)), LineKind::Warn));
                continue;
            }
            let functions =
                if i.functions.is_empty() { String::new() } else { format!(" for {}", i.functions.join(", ")) };
            let without = match i.users_without_account {
                Some(n) => format!(" ({n} of them without an account)"),
                None => String::new(),
            };
            let head = format!("{} account(s) and {} user(s){without} resolved to it{functions}", i.tenants, i.users);
            if first {
                first = false;
                let names = if i.joined.is_empty() { String::new() } else { format!(": {}", list(&i.joined)) };
                out.push((format!("  {span}: {head}{names}"), LineKind::Interval));
            } else {
                let mut moves = Vec::new();
                if !i.joined.is_empty() {
                    moves.push(format!("+ {}", list(&i.joined)));
                }
                if !i.left.is_empty() {
                    moves.push(format!("− {}", list(&i.left)));
                }
                let moves = if moves.is_empty() { String::new() } else { format!("; {}", moves.join("; ")) };
                out.push((format!("  {span}: {head}{moves}"), LineKind::Interval));
            }
        }
        for g in &s.gaps {
            out.push((format!("  ⚠ not vouched for: {}", visible(g)), LineKind::Warn));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::AccountStatus;

    fn account(id: i64, slug: &str) -> Account {
        Account { id, slug: slug.to_string(), name: slug.to_string(), status: AccountStatus::Active }
    }

    fn openai(id: i64, account_id: i64, key: &str) -> Setting {
        Setting {
            id,
            account_id,
            integration_type: "openai".to_string(),
            config: serde_json::json!({"apiKey": key, "model": "gpt-4o-mini"}),
            is_active: true,
            version: 0,
            updated_at: None,
            updated_by: None,
            version_token: false,
            withheld: None,
        }
    }

    fn mark(entry: i64) -> Mark {
        Mark { entry, at: DateTime::<Utc>::from_timestamp(1_700_000_000 + entry, 0).unwrap_or_default() }
    }

    /// A pair with two rows: the app reads the lowest id, so the other row
    /// gets its resolvers only once the lowest is gone — one copy of each
    /// row moving between the kept and the spare.
    #[test]
    fn the_second_row_of_a_pair_is_resolved_to_only_once_the_lowest_goes() {
        let target = Target { setting_id: 21, account_id: 2, integration_type: "openai".to_string() };
        let mut replay = Replay::new(
            Rules::default(),
            BTreeMap::from([(1, "aws-admin".to_string())]),
            vec![account(1, "aws-admin"), account(2, "t1")],
            vec![openai(21, 2, "sk-t1-second-row-key-0001"), openai(10, 1, "sk-admin-key-0001"), openai(20, 2, "")],
            HashMap::from([("generate".to_string(), "openai".to_string())]),
            HashMap::from([(Some(2), 5), (None, 3)]),
            vec![target],
            mark(1),
        );
        // Row 20 (blank) was read, t1 fell through to aws-admin; gone, row
        // 21 is read: t1 answers itself.
        replay.apply(mark(2), Event::Setting { id: 20, after: None });
        // A third row, higher: nothing changes.
        replay.apply(mark(3), Event::Setting { id: 22, after: Some(openai(22, 2, "")) });
        // Row 21 blanked: t1 moves on again.
        replay.apply(mark(4), Event::Setting { id: 21, after: Some(openai(21, 2, "")) });
        let points = replay.finish().remove(0);
        let marks: Vec<i64> = points.iter().map(|p| p.mark.entry).collect();
        assert_eq!(marks, vec![1, 2, 4], "{points:#?}");
        assert!(points[0].joined.is_empty() && points[0].users == 0 && points[0].no_account.is_none());
        assert_eq!(points[1].joined, vec![(Some(2), "t1".to_string())]);
        assert_eq!((points[1].users, points[1].no_account), (5, None));
        assert_eq!(points[2].left, vec![(Some(2), "t1".to_string())]);
        assert_eq!(points[2].users, 0);
    }

    /// Users without an account are not a tenant: the interval counts the
    /// tenants and says how many users had no account.
    #[test]
    fn users_without_an_account_are_counted_apart_from_the_tenants() {
        let target = Target { setting_id: 10, account_id: 1, integration_type: "openai".to_string() };
        let mut replay = Replay::new(
            Rules::default(),
            BTreeMap::from([(1, "aws-admin".to_string())]),
            vec![account(1, "aws-admin"), account(2, "t1")],
            vec![openai(10, 1, "sk-admin-key-0001"), openai(20, 2, "")],
            HashMap::from([("generate".to_string(), "openai".to_string())]),
            HashMap::from([(Some(1), 2), (Some(2), 5), (None, 3)]),
            vec![target],
            mark(1),
        );
        replay.apply(mark(2), Event::User { before: Some(None), after: Some(Some(2)) });
        let points = replay.finish().remove(0);
        let vouched = Vouched { entry: 1, at: mark(1).at, start_entry: 1, start_at: mark(1).at, why_gap: None };
        let got = intervals((Some(1), Some(mark(1).at)), (None, None), &points, Some(&vouched), "");
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!((got[0].tenants, got[0].accounts, got[0].users, got[0].users_without_account), (2, 3, 10, Some(3)));
        assert_eq!((got[1].tenants, got[1].users, got[1].users_without_account), (2, 10, Some(2)));
        let lines = timeline_lines(
            "#00000000",
            "since",
            &[Stretch {
                account: "aws-admin".into(),
                integration_type: "openai".into(),
                setting_id: 10,
                held: Held {
                    field: "config.apiKey".into(),
                    from: Some(mark(1).at),
                    from_entry: Some(1),
                    to: None,
                    to_entry: None,
                },
                accounts: None,
                users: None,
                functions: None,
                unknown: None,
                gaps: Vec::new(),
                intervals: got,
            }],
        );
        assert!(
            lines[2].0.contains("2 account(s) and 10 user(s) (3 of them without an account) resolved to it"),
            "{lines:#?}"
        );
    }
}
