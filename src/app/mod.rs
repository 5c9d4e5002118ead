//! The console's state machine: `update(&mut Model, Msg) -> Vec<Cmd>` is
//! pure and synchronous. It never touches the terminal or the database; it
//! asks for work by returning `Cmd`s, which the runtime (`tui`) executes in
//! background tasks whose replies come back as `Msg`s carrying the request
//! id they answer — a stale reply is dropped (latest wins).

mod access;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod connection_test;
pub mod delete;
pub mod editor;
pub mod endpoint;
pub mod help;
pub mod keymap;
pub mod lint_view;
mod live;
pub mod main_screen;
pub mod messages;
pub mod mouse;
pub mod palette;
pub mod permissions_view;
pub mod picker;
pub mod request;
pub mod resolve_panel;
pub mod reveal;
pub mod scroll;
pub mod setting_pane;
pub mod time_travel;
pub mod view;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::audit::AuditEntry;
use crate::domain::change::{Change, Conflict, ImpactRow, Proposal};
use crate::domain::directory::{AccountRow, SubjectData, UserHit};
use crate::domain::permissions::{self, Permissions, Subject, Target};
use crate::domain::registry;
use crate::domain::resolve::Snapshot;
use crate::domain::{Account, Policy, Setting};

pub use access::{Access, decide_access, may_modify, may_test, may_view, may_view_account};
use accounts::{AccountsPane, status_of};
pub use connection_test::LastTest;
use editor::keys::{editor_key, on_previewed, on_saved, waiting_key};
use editor::{Editor, Stage};
use keymap::{Action, Keymap, Screen};
pub use main_screen::Pane;
use picker::Picker;
pub use resolve_panel::ResolvePanel;
use resolve_panel::resolve_cmd;

/// Keep at most this many accounts' settings in memory; beyond it, rows far
/// from the screen are forgotten and fetched again when seen.
const SETTINGS_CACHE_ACCOUNTS: usize = 4_000;
/// Users fetched per picker search.
pub const USER_PAGE: i64 = 50;

/// Something that happened: a key, a reply from the database, time passing.
/// Its `Debug` names each message and its request, never what it carries
/// (a paste may be a key).
pub enum Msg {
    /// A key press, by name: "q", "ctrl-c", "enter", "G".
    Key(String),
    /// Text pasted into the terminal.
    Paste(String),
    /// The terminal's size.
    Resize { width: u16, height: u16 },
    /// The clock, every 250 ms.
    Tick { now: DateTime<Utc> },
    /// A filter pass run off the UI task (a big account index).
    Filtered(Box<accounts::Filtered>),
    /// The accounts index, the chain with its settings, the policy, the
    /// functions.
    Booted { request: u64, boot: Box<Boot> },
    /// The whole account index, after a first page (`request`: the boot).
    IndexLoaded { request: u64, accounts: Vec<AccountRow> },
    /// The settings of some accounts (all their rows; none is an answer too).
    Settings { request: u64, account_ids: Vec<i64>, settings: Vec<Setting> },
    /// The gathered data of a resolve-as request.
    Resolved { request: u64, subject: Box<SubjectData> },
    /// Users matching a picker query.
    UsersFound { request: u64, hits: Vec<UserHit> },
    /// A request failed; `unavailable` when the database is unreachable.
    Failed { request: u64, error: String, unavailable: bool },
    /// Something changed in the database, written by any client.
    Changed(Change),
    /// The change listener lost its connection (it keeps retrying).
    ListenerLost { error: String },
    /// The change listener is back: what is on screen may be stale.
    ListenerResumed,
    /// The audit entry behind a change, to say who made it.
    AuditLoaded { request: u64, entry: Option<AuditEntry> },
    /// The impact preview of an edit.
    Previewed { request: u64, impact: Vec<ImpactRow> },
    /// A save or delete went through (`setting` is None after a delete), or
    /// someone else changed the setting first.
    Saved { request: u64, result: Result<Option<Setting>, Box<Conflict>> },
    /// A revealed key (None: the setting has no key), already audited.
    Revealed { request: u64, secret: Option<crate::domain::Secret> },
    /// The audit entries of one setting.
    AuditList { request: u64, entries: Vec<AuditEntry> },
    /// The preview of a chain and/or policy change.
    AdminPreviewed { request: u64, impact: Vec<ImpactRow>, moves: Vec<crate::domain::permissions::PolicyMove> },
    /// The chain and/or policy change was written.
    AdminApplied { request: u64 },
    /// One page of lint findings, and how far lint has got.
    Linted { request: u64, findings: Vec<crate::domain::lint::Finding>, page: lint_view::LintPage },
    /// A connection test's outcome.
    Tested { request: u64, outcome: crate::connection::Outcome },
    /// The clipboard escape was written to the terminal.
    Copied { request: u64 },
    /// A click or the wheel (when the console takes the mouse).
    Mouse(mouse::Mouse),
    /// Where history begins and the last changes, for the "as of" picker.
    HistoryLoaded { request: u64, window: crate::domain::history::Window, recent: Vec<AuditEntry> },
    /// The world at the moment asked for (`Cmd::Travel`).
    Travelled { request: u64, world: Box<crate::domain::history::World> },
    /// The blast radius of a key.
    KeyHistoryLoaded { request: u64, history: Box<crate::domain::blast::KeyHistory> },
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, request) = match self {
            // Typed characters, one by one, may spell a key.
            Msg::Key(key) if key.chars().count() == 1 => return f.write_str("Key(<char>)"),
            Msg::Key(key) => return f.debug_tuple("Key").field(key).finish(),
            Msg::Paste(text) => return write!(f, "Paste(<{} chars>)", text.chars().count()),
            Msg::Resize { width, height } => return write!(f, "Resize({width}x{height})"),
            Msg::Tick { now } => return write!(f, "Tick({now})"),
            Msg::Changed(change) => return f.debug_tuple("Changed").field(change).finish(),
            Msg::ListenerLost { error } => return f.debug_tuple("ListenerLost").field(error).finish(),
            Msg::Failed { request, error, unavailable } => {
                return write!(f, "Failed({request}, {error:?}, unavailable: {unavailable})");
            }
            Msg::Tested { request, outcome } => return f.debug_tuple("Tested").field(request).field(outcome).finish(),
            Msg::Filtered(_) => ("Filtered", None),
            Msg::ListenerResumed => ("ListenerResumed", None),
            Msg::Booted { request, .. } => ("Booted", Some(request)),
            Msg::IndexLoaded { request, .. } => ("IndexLoaded", Some(request)),
            Msg::Settings { request, .. } => ("Settings", Some(request)),
            Msg::Resolved { request, .. } => ("Resolved", Some(request)),
            Msg::UsersFound { request, .. } => ("UsersFound", Some(request)),
            Msg::AuditLoaded { request, .. } => ("AuditLoaded", Some(request)),
            Msg::Previewed { request, .. } => ("Previewed", Some(request)),
            Msg::Saved { request, .. } => ("Saved", Some(request)),
            Msg::Revealed { request, .. } => ("Revealed", Some(request)),
            Msg::AuditList { request, .. } => ("AuditList", Some(request)),
            Msg::AdminPreviewed { request, .. } => ("AdminPreviewed", Some(request)),
            Msg::AdminApplied { request } => ("AdminApplied", Some(request)),
            Msg::Linted { request, .. } => ("Linted", Some(request)),
            Msg::Copied { request } => ("Copied", Some(request)),
            Msg::Mouse(m) => return f.debug_tuple("Mouse").field(m).finish(),
            Msg::HistoryLoaded { request, .. } => ("HistoryLoaded", Some(request)),
            Msg::Travelled { request, .. } => ("Travelled", Some(request)),
            Msg::KeyHistoryLoaded { request, .. } => ("KeyHistoryLoaded", Some(request)),
        };
        match request {
            Some(r) => write!(f, "{name}({r})"),
            None => f.write_str(name),
        }
    }
}

/// Work for the runtime. Each carries the request id its reply will bear.
/// Its `Debug` masks the keys some commands carry.
#[derive(Clone, PartialEq)]
pub enum Cmd {
    /// Load the first page of the accounts index, the chain with its
    /// settings, the policy, the functions and the operator as they are now.
    Boot { request: u64, operator: Option<String> },
    /// Load the whole account index after a first frame drawn from its
    /// first page (`request`: the boot it completes).
    LoadIndex { request: u64 },
    /// Load every setting of these accounts.
    LoadSettings { request: u64, account_ids: Vec<i64> },
    /// Gather what resolving `function` for `email` needs (one round trip).
    Resolve { request: u64, email: String, function: String },
    /// Search users by email for the picker.
    FindUsers { request: u64, query: String },
    /// Read one audit entry (to name who made a change).
    LoadAudit { request: u64, id: i64 },
    /// Compute who would resolve differently after a change.
    Preview { request: u64, proposal: Proposal },
    /// Write one setting if it is still at `expected_version` (0: absent).
    Save {
        request: u64,
        actor: String,
        account: String,
        integration_type: String,
        expected_version: i64,
        config: serde_json::Value,
        is_active: bool,
    },
    /// Delete one setting if it is still at `expected_version`.
    Delete { request: u64, actor: String, account: String, integration_type: String, expected_version: i64 },
    /// Record a reveal in the audit log and read the key.
    Reveal { request: u64, actor: String, account: String, integration_type: String },
    /// Load the audit entries of one setting.
    LoadAuditList { request: u64, account: String, integration_type: String },
    /// Preview a new chain (who resolves differently) and/or policy (who
    /// gains or loses which action).
    PreviewAdmin { request: u64, chain: Option<Vec<String>>, policy: Option<(Policy, Policy)> },
    /// Write the new chain and/or policy, as `actor`, if the stored ones are
    /// still `expected_*` (one transaction).
    ApplyAdmin {
        request: u64,
        actor: String,
        chain: Option<Vec<String>>,
        policy: Option<Policy>,
        expected_chain: Vec<String>,
        expected_policy: Policy,
    },
    /// Run the lint rules over the next page of accounts (after this
    /// account id; None: the first page, with the chain's findings).
    Lint { request: u64, after: Option<i64> },
    /// Test the key of `account`'s `provider` setting; the runtime asks the
    /// database for it as `actor` (checked and recorded there). `insecure`:
    /// whether an endpoint that needs confirming was confirmed.
    TestConnection {
        request: u64,
        actor: String,
        account: String,
        provider: String,
        insecure: crate::connection::Insecure,
    },
    /// Put `text` on the operator's clipboard (OSC 52, through the
    /// terminal, so over SSH too); `what` names it for the notice.
    Copy { request: u64, what: String, text: crate::domain::Secret },
    /// Where history begins and the last changes of the audit log.
    LoadHistory { request: u64 },
    /// The world at a moment (refused before history or inside a gap).
    Travel { request: u64, moment: crate::domain::history::Moment },
    /// What resolving `function` for `email` needed at `cut`.
    ResolveAt { request: u64, cut: crate::domain::history::Cut, email: String, function: String },
    /// The blast radius of the key of this fingerprint.
    KeyHistory { request: u64, fingerprint: String },
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::domain::secret::mask_config;
        match self {
            Cmd::Save { request, account, integration_type, expected_version, config, is_active, .. } => f
                .debug_struct("Save")
                .field("request", request)
                .field("account", account)
                .field("integration_type", integration_type)
                .field("expected_version", expected_version)
                .field("config", &mask_config(config))
                .field("is_active", is_active)
                .finish_non_exhaustive(),
            Cmd::TestConnection { request, actor, account, provider, insecure } => f
                .debug_struct("TestConnection")
                .field("request", request)
                .field("actor", actor)
                .field("account", account)
                .field("provider", provider)
                .field("insecure", insecure)
                .finish(),
            Cmd::Preview { request, proposal } => {
                f.debug_struct("Preview").field("request", request).field("proposal", proposal).finish()
            }
            other => write!(f, "{}", cmd_name(other)),
        }
    }
}

fn cmd_name(cmd: &Cmd) -> String {
    match cmd {
        Cmd::Boot { request, .. } => format!("Boot({request})"),
        Cmd::LoadIndex { request } => format!("LoadIndex({request})"),
        Cmd::LoadSettings { request, account_ids } => format!("LoadSettings({request}, {account_ids:?})"),
        Cmd::Resolve { request, email, function } => format!("Resolve({request}, {email:?}, {function:?})"),
        Cmd::FindUsers { request, query } => format!("FindUsers({request}, {query:?})"),
        Cmd::LoadAudit { request, id } => format!("LoadAudit({request}, {id})"),
        Cmd::Delete { request, account, integration_type, .. } => {
            format!("Delete({request}, {account}, {integration_type})")
        }
        Cmd::Reveal { request, account, integration_type, .. } => {
            format!("Reveal({request}, {account}, {integration_type})")
        }
        Cmd::LoadAuditList { request, account, .. } => format!("LoadAuditList({request}, {account})"),
        Cmd::PreviewAdmin { request, .. } => format!("PreviewAdmin({request})"),
        Cmd::ApplyAdmin { request, .. } => format!("ApplyAdmin({request})"),
        Cmd::Lint { request, after } => format!("Lint({request}, {after:?})"),
        Cmd::Copy { request, what, .. } => format!("Copy({request}, {what})"),
        Cmd::LoadHistory { request } => format!("LoadHistory({request})"),
        Cmd::Travel { request, moment } => format!("Travel({request}, {moment:?})"),
        Cmd::ResolveAt { request, email, function, .. } => format!("ResolveAt({request}, {email:?}, {function:?})"),
        Cmd::KeyHistory { request, fingerprint } => format!("KeyHistory({request}, {fingerprint})"),
        Cmd::Save { .. } | Cmd::TestConnection { .. } | Cmd::Preview { .. } => String::new(),
    }
}

impl Cmd {
    /// The request id the reply will carry.
    pub fn request(&self) -> u64 {
        match self {
            Cmd::Boot { request, .. }
            | Cmd::LoadIndex { request }
            | Cmd::LoadSettings { request, .. }
            | Cmd::Resolve { request, .. }
            | Cmd::FindUsers { request, .. }
            | Cmd::LoadAudit { request, .. }
            | Cmd::Preview { request, .. }
            | Cmd::Save { request, .. }
            | Cmd::Delete { request, .. }
            | Cmd::Reveal { request, .. }
            | Cmd::LoadAuditList { request, .. }
            | Cmd::PreviewAdmin { request, .. }
            | Cmd::ApplyAdmin { request, .. }
            | Cmd::Lint { request, .. }
            | Cmd::TestConnection { request, .. }
            | Cmd::Copy { request, .. }
            | Cmd::LoadHistory { request }
            | Cmd::Travel { request, .. }
            | Cmd::ResolveAt { request, .. }
            | Cmd::KeyHistory { request, .. } => *request,
        }
    }
}

/// What the console loads first.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The account index, or its first page (the chain's accounts, then
    /// the first tenants by slug) when `complete` is false: the whole
    /// index follows (`Cmd::LoadIndex`), so a first frame never waits for
    /// a million rows.
    pub accounts: Vec<AccountRow>,
    pub complete: bool,
    /// The chain, its accounts and their settings, and the policy.
    pub base: SubjectData,
    pub functions: Vec<(String, String)>,
}

#[derive(Debug)]
pub enum Overlay {
    Picker(Picker),
    /// Editing a setting, through preview and save.
    Edit(Box<Editor>),
    /// "Delete this override?" — Cancel is focused until moved.
    ConfirmDelete(delete::DeleteDialog),
    /// "Reveal this key? It is recorded." — yes reveals, any other key cancels.
    ConfirmReveal(reveal::RevealDialog),
    /// The audit log of one setting; enter reverts the selected entry.
    Audit(audit::AuditView),
    /// The chain and the policy.
    Admin(admin::AdminView),
    /// The lint findings.
    Lint(Box<lint_view::LintView>),
    /// "http://… is plain http on a loopback address: send the key anyway?"
    ConfirmEndpoint(endpoint::EndpointDialog),
    /// `:` — jump to an account, a user, a screen or a context.
    Palette(palette::Palette),
    /// "As of…": the world at a moment.
    AsOf(Box<time_travel::AsOfPicker>),
    /// The blast radius of the key shown.
    KeyHistory(Box<time_travel::KeyHistoryView>),
}

/// Static facts for the header.
#[derive(Debug, Clone)]
pub struct Session {
    /// host/db, never a password.
    pub database: String,
    /// A connection profile's label ("production").
    pub label: Option<String>,
    /// Its colour name ("red").
    pub color: Option<String>,
    pub access: Access,
    /// `NO_COLOR` is set: styles only, no colours.
    pub no_color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Up,
    Lost,
}

/// Which accounts' settings are in memory and which are on their way (the
/// chain's are always in memory, with the snapshot).
#[derive(Debug, Default)]
struct SettingsCache {
    loaded: HashSet<i64>,
    requested: HashSet<i64>,
    /// In-flight settings requests and the accounts each asked for.
    in_flight: HashMap<u64, Vec<i64>>,
}

impl SettingsCache {
    /// `request` asks for these accounts.
    fn asked(&mut self, request: u64, account_ids: &[i64]) {
        self.requested.extend(account_ids.iter().copied());
        self.in_flight.insert(request, account_ids.to_vec());
    }

    /// `request` is answered or failed: its accounts are no longer on
    /// their way. False when it was not a settings request.
    fn settled(&mut self, request: u64) -> bool {
        let Some(ids) = self.in_flight.remove(&request) else { return false };
        for id in ids {
            self.requested.remove(&id);
        }
        true
    }

    /// In memory, or on its way.
    fn holds(&self, account_id: i64) -> bool {
        self.loaded.contains(&account_id) || self.requested.contains(&account_id)
    }

    fn clear(&mut self) {
        *self = SettingsCache::default();
    }
}

/// The whole console state. Panes own their state; the model wires them.
#[derive(Debug)]
pub struct Model {
    pub session: Session,
    pub keymap: Keymap,
    pub connection: Connection,
    pub size: (u16, u16),
    pub now: DateTime<Utc>,
    /// The main screen: focused pane, tab, setting scroll.
    pub main: main_screen::MainState,
    pub accounts: AccountsPane,
    /// The chain's accounts and settings plus every loaded account's rows.
    pub world: Snapshot,
    pub policy: Policy,
    pub functions: Vec<(String, String)>,
    pub resolve: ResolvePanel,
    pub overlay: Option<Overlay>,
    /// The keys of the screen below, over everything while open.
    pub help: Option<help::HelpView>,
    /// One line for the footer; cleared by the next key, or after
    /// `messages::NOTICE_SECONDS` (the message log keeps it).
    pub notice: Option<String>,
    /// Every notice of the session, with its time (`m` opens it).
    pub messages: messages::Log,
    /// Where the open preview (save, delete, chain and policy) is scrolled to.
    pub preview_scroll: scroll::Scroll,
    /// A key revealed on purpose; hidden again by the next key or in 10 s.
    pub revealed: Option<reveal::Revealed>,
    /// The last connection test: which setting, when, and how it went.
    pub last_test: Option<LastTest>,
    pub quit: bool,
    pending: live::Pending,
    /// Whose settings are in memory, and whose are on their way.
    cache: SettingsCache,
    /// When to try booting again after a failed boot, and how often it failed.
    boot_retry: Option<(DateTime<Utc>, u32)>,
    /// Request ids, and the newest of each kind (latest reply wins).
    requests: request::Tracker,
    /// The user picker's search in flight and the query typed meanwhile.
    user_search: picker::UserSearch,
    /// The config file's contexts (name, header label), and the one in
    /// force; `:ctx NAME` asks the runtime to move (`switch_to`).
    pub contexts: Vec<(String, String)>,
    pub context: Option<String>,
    pub switch_to: Option<String>,
    /// The moment shown when it is not now (read-only), and a trip in flight.
    pub time: time_travel::TimeTravel,
}

impl Model {
    pub fn new(session: Session, keymap: Keymap, now: DateTime<Utc>) -> Model {
        let email = session.access.operator.as_ref().map(|u| u.email.clone());
        Model {
            session,
            keymap,
            connection: Connection::Connecting,
            size: (80, 24),
            now,
            main: main_screen::MainState::default(),
            accounts: AccountsPane::default(),
            world: Snapshot::default(),
            policy: Policy::SystemOnly,
            functions: Vec::new(),
            resolve: ResolvePanel { email, ..ResolvePanel::default() },
            overlay: None,
            help: None,
            notice: None,
            messages: messages::Log::default(),
            preview_scroll: scroll::Scroll::default(),
            revealed: None,
            last_test: None,
            quit: false,
            pending: live::Pending::default(),
            cache: SettingsCache::default(),
            boot_retry: None,
            requests: request::Tracker::default(),
            user_search: picker::UserSearch::default(),
            contexts: Vec::new(),
            context: None,
            switch_to: None,
            time: time_travel::TimeTravel::default(),
        }
    }

    /// The commands to run at start.
    pub fn start(&mut self) -> Vec<Cmd> {
        let request = self.requests.start(request::Kind::Boot);
        let operator = self.session.access.operator.as_ref().map(|u| u.email.clone());
        vec![Cmd::Boot { request, operator }]
    }

    fn request(&mut self) -> u64 {
        self.requests.issue()
    }

    /// Integration types with a tab: the registry's, then unknown types
    /// found in loaded data.
    pub fn tabs(&self) -> Vec<String> {
        let mut tabs: Vec<String> = registry::type_names().map(str::to_string).collect();
        let unknown: BTreeSet<&str> =
            self.world.settings.keys().map(|(_, t)| t.as_str()).filter(|t| registry::spec(t).is_none()).collect();
        tabs.extend(unknown.into_iter().map(str::to_string));
        tabs
    }

    pub fn current_type(&self) -> String {
        let tabs = self.tabs();
        tabs.get(self.main.tab).cloned().unwrap_or_else(|| tabs[0].clone())
    }

    pub fn selected_account(&self) -> Option<&Account> {
        self.accounts.selected().map(|e| &e.account)
    }

    /// Whether an account's settings are in memory.
    pub fn is_loaded(&self, account_id: i64) -> bool {
        // The past is read whole.
        self.time.as_of.is_some() || self.cache.loaded.contains(&account_id) || self.world.is_system(account_id)
    }

    /// The permission checks for the resolve-as user (or the operator)
    /// against the selected account, under `policy`.
    pub fn permissions(&self, policy: Policy) -> Option<Permissions> {
        let subject = self.resolve.subject.as_ref()?;
        let user = subject.user.as_ref()?;
        let account = subject.user_account();
        let chain = &subject.snapshot.chain;
        let s = Subject {
            user,
            account,
            account_chain_position: account.and_then(|a| crate::domain::model::chain_position(chain, a.id)),
        };
        let selected = self.selected_account();
        let head = chain.first().map(|e| e.slug.as_str()).unwrap_or("(no system account)");
        let target = match selected {
            Some(a) if self.world.is_system(a.id) => Target::System { slug: &a.slug },
            Some(a) => Target::Tenant { account: a },
            None => Target::System { slug: head },
        };
        Some(permissions::evaluate_all(&s, policy, &target))
    }

    /// The screen that has the keys: help over everything, then the
    /// overlay (by its stage), then the filter, then the main panes.
    pub fn screen(&self) -> Screen {
        if self.help.is_some() {
            Screen::Help
        } else if self.messages.open {
            Screen::Messages
        } else {
            self.screen_below_help()
        }
    }

    /// The screen help describes first.
    pub fn screen_below_help(&self) -> Screen {
        use admin::AdminStage;
        match &self.overlay {
            Some(Overlay::Picker(_)) => Screen::Picker,
            Some(Overlay::Palette(_)) => Screen::Palette,
            Some(Overlay::AsOf(_)) => Screen::AsOf,
            Some(Overlay::KeyHistory(_)) => Screen::KeyHistory,
            Some(Overlay::Edit(ed)) => match &ed.stage {
                Stage::Editing => Screen::Editor,
                Stage::Confirm { .. } => Screen::SavePreview,
                Stage::Conflict { asking: false, .. } => Screen::Conflict,
                Stage::Conflict { asking: true, .. } | Stage::Discard { .. } => Screen::Confirm,
                Stage::Previewing { .. } | Stage::Saving { .. } => Screen::Waiting,
                Stage::Merging { .. } => Screen::Merge,
            },
            Some(Overlay::ConfirmDelete(dialog)) if dialog.request.is_some() => Screen::Waiting,
            Some(Overlay::ConfirmReveal(dialog)) if dialog.request.is_some() => Screen::Waiting,
            Some(Overlay::ConfirmDelete(_)) => Screen::Delete,
            Some(Overlay::ConfirmReveal { .. }) => Screen::Confirm,
            Some(Overlay::ConfirmEndpoint(_)) => Screen::Confirm,
            Some(Overlay::Audit(_)) => Screen::Audit,
            Some(Overlay::Lint(view)) if view.filtering => Screen::Filter,
            Some(Overlay::Lint(_)) => Screen::Lint,
            Some(Overlay::Admin(view)) => match view.stage {
                AdminStage::Editing => Screen::ChainPolicy,
                AdminStage::Discard { .. } => Screen::Confirm,
                AdminStage::Confirm { .. } => Screen::ChainPolicyPreview,
                AdminStage::Previewing { .. } | AdminStage::Applying { .. } => Screen::Waiting,
            },
            None if self.accounts.filtering => Screen::Filter,
            None => Screen::Main,
        }
    }

    /// Rows of the accounts pane at the current size (shared with the view).
    pub fn account_rows(&self) -> usize {
        view::accounts_height(self.size)
    }
}

/// Apply one message; return the work it calls for. Every notice goes to
/// the message log; a notice leaves the footer after a few seconds; a
/// preview starts at its top.
pub fn update(model: &mut Model, msg: Msg) -> Vec<Cmd> {
    let tick = matches!(msg, Msg::Tick { .. });
    let screen = model.screen_below_help();
    let cmds = update_model(model, msg);
    if tick && model.messages.expired(model.now) {
        model.notice = None;
    }
    model.messages.record(model.notice.as_ref(), model.now);
    if model.screen_below_help() != screen {
        model.preview_scroll.reset();
    }
    cmds
}

fn update_model(model: &mut Model, msg: Msg) -> Vec<Cmd> {
    match msg {
        Msg::Key(key) => {
            model.notice = None;
            if let Some(revealed) = model.revealed.take() {
                // Any key hides a revealed key first; copy takes it along
                // (it was confirmed and recorded as a reveal).
                if model.screen() == Screen::Main && model.keymap.action(Screen::Main, &key) == Some(Action::Copy) {
                    return main_screen::copy(model, "the revealed key".into(), revealed.secret);
                }
                return Vec::new();
            }
            on_key(model, &key)
        }
        Msg::Paste(text) => on_paste(model, &text),
        Msg::Resize { width, height } => {
            model.size = (width, height);
            load_visible(model)
        }
        Msg::Filtered(filtered) => {
            if model.accounts.apply(*filtered) {
                load_visible(model)
            } else {
                Vec::new()
            }
        }
        Msg::Tick { now } => {
            model.now = now;
            if model.revealed.as_ref().is_some_and(|r| now >= r.until) {
                model.revealed = None;
            }
            if let Some((at, _)) = model.boot_retry
                && now >= at
            {
                model.boot_retry = None;
                model.requests.refresh();
                return model.start();
            }
            live::apply_pending(model)
        }
        // The past view does not follow live changes: it counts them.
        Msg::Changed(change) if model.time.as_of.is_some() => {
            time_travel::heard(model, change.bulk.unwrap_or(1).max(1) as usize);
            Vec::new()
        }
        Msg::Changed(change) => {
            live::note_change(model, change);
            Vec::new()
        }
        Msg::ListenerLost { error } => {
            model.connection = Connection::Lost;
            model.notice = Some(format!(
                "database connection lost ({}); retrying",
                crate::domain::text::visible_short(&error, 80)
            ));
            Vec::new()
        }
        Msg::ListenerResumed if model.time.as_of.is_some() => {
            model.notice = Some("database connection back (changes made meanwhile are not counted)".into());
            Vec::new()
        }
        Msg::ListenerResumed => {
            // Notices sent while we were away are gone: reload what we show.
            model.notice = Some("database connection back; reloaded".into());
            model.requests.refresh();
            model.start()
        }
        Msg::Previewed { request, impact } => match &model.overlay {
            Some(Overlay::ConfirmDelete(_)) => delete::previewed(model, request, impact),
            _ => on_previewed(model, request, impact),
        },
        Msg::Revealed { request, secret } => reveal::revealed(model, request, secret),
        Msg::AdminPreviewed { request, impact, moves } => admin::previewed(model, request, impact, moves),
        Msg::AdminApplied { request } => admin::applied(model, request),
        Msg::Linted { request, findings, page } => lint_view::loaded(model, request, findings, page),
        Msg::Tested { request, outcome } => connection_test::tested(model, request, outcome),
        Msg::AuditList { request, entries } => audit::loaded(model, request, entries),
        Msg::Saved { request, result } => match &model.overlay {
            Some(Overlay::ConfirmDelete(_)) => delete::deleted(model, request, result),
            _ => on_saved(model, request, result),
        },
        Msg::AuditLoaded { request, entry } => {
            if model.requests.is_stale(request) {
                return Vec::new();
            }
            if let Some(e) = entry {
                model.notice = Some(live::change_notice(&e));
                editor::keys::heard(model, &e);
            }
            Vec::new()
        }
        Msg::Booted { request, boot } => {
            if !model.requests.is_latest(request::Kind::Boot, request) || model.time.as_of.is_some() {
                return Vec::new();
            }
            on_boot(model, request, *boot)
        }
        Msg::IndexLoaded { request, accounts } => {
            if !model.requests.is_latest(request::Kind::Boot, request) || model.time.as_of.is_some() {
                return Vec::new();
            }
            let chain = model.world.chain.clone();
            model.accounts.set_accounts(accounts.into_iter().map(account_of).collect(), &chain);
            model.accounts.partial = false;
            load_visible(model)
        }
        Msg::Settings { request, account_ids, settings } => {
            model.cache.settled(request);
            if model.requests.is_stale(request) {
                return Vec::new();
            }
            model.connection = Connection::Up;
            for id in &account_ids {
                model.world.settings.retain(|(a, _), _| a != id);
                model.cache.loaded.insert(*id);
                if let Some(e) = model.accounts.entry_by_id(*id) {
                    model.world.accounts.insert(*id, e.account.clone());
                }
            }
            for s in settings {
                model.world.settings.insert((s.account_id, s.integration_type.clone()), s);
            }
            editor::keys::settings_loaded(model, &account_ids);
            Vec::new()
        }
        Msg::Resolved { request, subject } => resolve_panel::resolved(model, request, *subject),
        Msg::UsersFound { request, hits } if matches!(model.overlay, Some(Overlay::Palette(_))) => {
            palette::found(model, request, hits)
        }
        Msg::UsersFound { request, hits } => picker::found(model, request, hits),
        Msg::Failed { request, error, unavailable } => on_failed(model, request, &error, unavailable),
        Msg::Copied { .. } => Vec::new(),
        Msg::Mouse(m) => mouse::on_mouse(model, m),
        Msg::HistoryLoaded { request, window, recent } => time_travel::history_loaded(model, request, window, recent),
        Msg::Travelled { request, world } => time_travel::travelled(model, request, *world),
        Msg::KeyHistoryLoaded { request, history } => time_travel::key_history_loaded(model, request, *history),
    }
}

/// A request failed. Only the newest request of each kind may report;
/// a failed boot is retried with backoff (1 s doubling to 30 s).
fn on_failed(model: &mut Model, request: u64, error: &str, unavailable: bool) -> Vec<Cmd> {
    let editing = match &mut model.overlay {
        Some(Overlay::Edit(_)) => editor::keys::failed(model, request, error),
        Some(Overlay::ConfirmDelete(_)) => match delete::failed(model, request, error) {
            Some(true) => true,
            // The preview: the dialog still works and says so.
            Some(false) => return Vec::new(),
            None => false,
        },
        _ => false,
    };
    let editing = editing
        || admin::failed(model, request, error)
        || audit::failed(model, request, error)
        || reveal::failed(model, request, error)
        || connection_test::failed(model, request, error)
        || lint_view::failed(model, request, error)
        || time_travel::failed(model, request, error);
    if editing {
        if unavailable {
            model.connection = Connection::Lost;
        }
        return Vec::new();
    }
    let mut retry = None;
    // Settings requests settle (their accounts may be asked again); then
    // only the newest request of each kind may report.
    let settings = model.cache.settled(request);
    if settings {
        // Said below, unless from before a refresh.
    } else if model.requests.is_latest(request::Kind::Boot, request) {
        let attempt = model.boot_retry.map(|(_, n)| n + 1).unwrap_or(0);
        let wait = chrono::Duration::seconds(1i64 << attempt.min(5)).min(chrono::Duration::seconds(30));
        model.boot_retry = Some((model.now + wait, attempt));
    } else if model.requests.is_latest(request::Kind::UserSearch, request) {
        // A query typed meanwhile is still wanted.
        retry = picker::search_failed(model);
        palette::search_failed(model);
    } else if !model.requests.is_latest(request::Kind::Resolve, request) {
        // An answer nobody waits for any more.
        return Vec::new();
    }
    if model.requests.is_stale(request) {
        return Vec::new();
    }
    if unavailable {
        model.connection = Connection::Lost;
    }
    model.notice = Some(crate::domain::text::visible_short(error, 200));
    retry.map(|query| picker::search_users(model, query)).unwrap_or_default()
}

fn account_of(r: AccountRow) -> Account {
    Account { id: r.id, status: status_of(&r.status), slug: r.slug, name: r.name }
}

fn on_boot(model: &mut Model, request: u64, boot: Boot) -> Vec<Cmd> {
    model.connection = Connection::Up;
    // Rights follow the operator, the policy and the chain as they are now.
    if model.session.access.operator.is_some() {
        let forced = model.session.access.forced.then(|| model.session.access.read_only.clone()).flatten();
        let before = model.session.access.read_only.clone();
        model.session.access = decide_access(&boot.base, forced);
        if model.session.access.read_only != before {
            model.notice = Some(match &model.session.access.read_only {
                Some(why) => format!("your rights changed: read-only now ({why})"),
                None => "your rights changed: you may edit now".to_string(),
            });
        }
    }
    model.policy = boot.base.policy;
    model.functions = boot.functions;
    let chain = boot.base.snapshot.chain.clone();
    // A reload (a live change, a reconnect) keeps the whole index it has
    // until the new one is in: the first page would shrink the list and
    // lose a selection or a filter's matches beyond it.
    let have_whole = model.accounts.total() > 0 && !model.accounts.partial;
    if boot.complete || !have_whole {
        model.accounts.set_accounts(boot.accounts.into_iter().map(account_of).collect(), &chain);
        model.accounts.partial = !boot.complete;
    }
    model.world = boot.base.snapshot;
    model.cache.clear();
    editor::keys::row_moved(model);
    model.boot_retry = None;
    if model.resolve.function.is_none() {
        model.resolve.function = model.functions.first().map(|(f, _)| f.clone());
    }
    let mut cmds = load_visible(model);
    cmds.extend(resolve_cmd(model));
    if !boot.complete {
        cmds.push(Cmd::LoadIndex { request });
    }
    cmds
}

/// Ask for the settings of on-screen accounts not yet in memory, and forget
/// far-away ones when the cache is full.
pub(crate) fn load_visible(model: &mut Model) -> Vec<Cmd> {
    // The past is in memory whole.
    if model.time.as_of.is_some() {
        return Vec::new();
    }
    let height = model.account_rows();
    let offset = model.accounts.scroll_for(height);
    // A page above and below, so scrolling a little needs no round trip.
    let from = offset.saturating_sub(height);
    let visible: Vec<i64> = model.accounts.window(from, height * 3).map(|e| e.account.id).collect();
    if model.cache.loaded.len() > SETTINGS_CACHE_ACCOUNTS {
        let keep: HashSet<i64> = visible.iter().copied().collect();
        let world = &mut model.world;
        model.cache.loaded.retain(|id| keep.contains(id));
        let chain_ids: HashSet<i64> = world.chain.iter().filter_map(|e| e.account.as_ref().map(|a| a.id)).collect();
        world.settings.retain(|(a, _), _| keep.contains(a) || chain_ids.contains(a));
    }
    let missing: Vec<i64> =
        visible.into_iter().filter(|id| !model.is_loaded(*id) && !model.cache.requested.contains(id)).collect();
    if missing.is_empty() {
        return Vec::new();
    }
    vec![load_settings(model, missing)]
}

fn load_settings(model: &mut Model, account_ids: Vec<i64>) -> Cmd {
    let request = model.request();
    model.cache.asked(request, &account_ids);
    Cmd::LoadSettings { request, account_ids }
}

fn on_paste(model: &mut Model, text: &str) -> Vec<Cmd> {
    if let Some(Overlay::Edit(ed)) = &mut model.overlay {
        if matches!(ed.stage, Stage::Editing) {
            ed.paste(text);
        }
        return Vec::new();
    }
    // Only text inputs take pastes; line breaks never become keys.
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if let Some(Overlay::Picker(p)) = &mut model.overlay {
        let query = format!("{}{clean}", p.query);
        return picker::set_query(model, query);
    }
    if let Some(Overlay::Lint(view)) = &mut model.overlay {
        if view.filtering {
            let filter = format!("{}{clean}", view.filter);
            view.set_filter(filter);
        }
        return Vec::new();
    }
    if let Some(Overlay::AsOf(p)) = &mut model.overlay {
        time_travel::paste(p, &clean);
        return Vec::new();
    }
    if let Some(Overlay::Palette(p)) = &mut model.overlay {
        let query = format!("{}{clean}", p.query);
        return palette::set_query(model, query);
    }
    if model.accounts.filtering {
        let filter = format!("{}{clean}", model.accounts.filter);
        model.accounts.set_filter(filter);
        return load_visible(model);
    }
    Vec::new()
}

fn on_key(model: &mut Model, key: &str) -> Vec<Cmd> {
    let screen = model.screen();
    let action = model.keymap.action(screen, key);
    match action {
        Some(Action::Help) if screen != Screen::Help => {
            model.help = Some(help::HelpView::default());
            return Vec::new();
        }
        Some(Action::Quit) => return quit(model),
        Some(Action::Messages) if screen != Screen::Messages => return messages::open(model),
        Some(a)
            if matches!(screen, Screen::SavePreview | Screen::Delete | Screen::ChainPolicyPreview)
                && model.preview_scroll.key(a) =>
        {
            return Vec::new();
        }
        _ => {}
    }
    match screen {
        Screen::AsOf => time_travel::picker_key(model, key, action),
        Screen::KeyHistory => time_travel::key_history_key(model, action),
        Screen::Help => help::key(model, action),
        Screen::Messages => messages::key(model, action),
        Screen::Main => main_screen::key(model, action),
        Screen::Filter if matches!(model.overlay, Some(Overlay::Lint(_))) => lint_view::filter_key(model, key, action),
        Screen::Filter => main_screen::filter_key(model, key, action),
        Screen::Picker => picker::key(model, key, action),
        Screen::Palette => palette::key(model, key, action),
        Screen::Editor | Screen::SavePreview | Screen::Conflict | Screen::Merge => editor_key(model, key, action),
        Screen::Confirm => match &model.overlay {
            Some(Overlay::ConfirmReveal(_)) => reveal::key(model, action),
            Some(Overlay::ConfirmEndpoint(_)) => endpoint::key(model, action),
            Some(Overlay::Admin(_)) => admin::key(model, action),
            _ => editor_key(model, key, action),
        },
        Screen::Delete => delete::key(model, action),
        Screen::Waiting => waiting_key(model, action),
        Screen::Audit => audit::key(model, action),
        Screen::Lint => lint_view::key(model, action),
        Screen::ChainPolicy | Screen::ChainPolicyPreview => admin::key(model, action),
    }
}

/// Quit, unless that would throw away edits: then ask first.
fn quit(model: &mut Model) -> Vec<Cmd> {
    if let Some(Overlay::Edit(ed)) = &mut model.overlay
        && ed.is_dirty()
        && !matches!(ed.stage, Stage::Discard { .. })
    {
        model.help = None;
        ed.ask_discard(true);
        return Vec::new();
    }
    if admin::ask_before_quitting(model) {
        model.help = None;
        return Vec::new();
    }
    model.quit = true;
    Vec::new()
}

/// How far a movement goes on a list `page` rows high.
pub(crate) fn movement(action: Action, page: usize) -> Option<isize> {
    let page = page.max(1) as isize;
    Some(match action {
        Action::Up => -1,
        Action::Down => 1,
        Action::PageUp => -page,
        Action::PageDown => page,
        Action::Top => isize::MIN / 2,
        Action::Bottom => isize::MAX / 2,
        _ => return None,
    })
}

/// `index` moved by `delta` within `0..len`.
pub(crate) fn moved(index: usize, delta: isize, len: usize) -> usize {
    (index as isize).saturating_add(delta).clamp(0, len.saturating_sub(1) as isize) as usize
}

/// Typing in a text input: the character a key stands for, if any.
pub(crate) fn typed_char(key: &str) -> Option<char> {
    match key {
        "space" => Some(' '),
        k if k.chars().count() == 1 => k.chars().next(),
        _ => None,
    }
}
