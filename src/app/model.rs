//! The console's model at the bottom of `app/`: the state (`Model`, with
//! each screen's own state in it), what happens (`Msg`) and the work asked
//! for (`Cmd`). `update` (the router, in `app`) changes it; the screens read
//! and change it through the functions `update` calls.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::audit::AuditEntry;
use crate::domain::change::{Change, Conflict, ImpactRow, Proposal};
use crate::domain::directory::{AccountRow, SubjectData, UserHit};
use crate::domain::history::Moment;
use crate::domain::permissions::{self, Permissions, Subject, Target};
use crate::domain::registry;
use crate::domain::resolve::Snapshot;
use crate::domain::{Account, Policy, Setting};

use super::accounts::{self, AccountsPane};
use super::keymap::{Action, Keymap, Screen};
use super::state::access::Access;
use super::state::connection_test::LastTest;
use super::state::editor::{Editor, Stage};
use super::state::resolve::ResolvePanel;
use super::state::{
    admin, audit, delete, endpoint, help, lint, live, main, messages, mouse, palette, picker, reveal, time_travel,
};
use super::{request, scroll, widgets};

/// Keep at most this many accounts' settings in memory; beyond it, rows far
/// from the screen are forgotten and fetched again when seen.
pub(super) const SETTINGS_CACHE_ACCOUNTS: usize = 4_000;
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
    Linted { request: u64, findings: Vec<crate::domain::lint::Finding>, page: lint::LintPage },
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
    Picker(picker::Picker),
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
    Lint(Box<lint::LintView>),
    /// "http://… is plain http on a loopback address: send the key anyway?"
    ConfirmEndpoint(endpoint::EndpointDialog),
    /// `:` — jump to an account, a user, a screen or a context.
    Palette(palette::Palette),
    /// "As of…": the world at a moment.
    AsOf(Box<time_travel::AsOfPicker>),
    /// The blast radius of the key shown.
    KeyHistory(Box<time_travel::KeyHistoryView>),
}

impl Overlay {
    /// Whether this overlay waits for the reply to `request` (a preview, a
    /// write, a load): the router hands a reply only to the overlay that
    /// asked for it. Every overlay says, so a new one does not compile
    /// until it does.
    pub fn awaits(&self, request: u64) -> bool {
        use admin::AdminStage;
        match self {
            Overlay::Edit(ed) => {
                matches!(ed.stage, Stage::Previewing { request: r } | Stage::Saving { request: r } if r == request)
            }
            Overlay::ConfirmDelete(d) => d.preview == request || d.request == Some(request),
            Overlay::ConfirmReveal(d) => d.request == Some(request),
            Overlay::Admin(view) => matches!(
                view.stage,
                AdminStage::Previewing { request: r } | AdminStage::Applying { request: r } if r == request
            ),
            Overlay::Audit(view) => view.request == request,
            Overlay::Lint(view) => view.request == request,
            Overlay::AsOf(p) => p.request == request,
            Overlay::KeyHistory(v) => v.request == request,
            Overlay::Picker(_) | Overlay::Palette(_) | Overlay::ConfirmEndpoint(_) => false,
        }
    }
}

/// What a screen's key or click leaves to the router besides its own
/// commands: a step that belongs to another screen. Screens never call
/// each other; they say what should happen next (`follow`).
#[derive(Debug)]
pub enum Outcome {
    /// Done here: the work to run.
    Done(Vec<Cmd>),
    /// Open the screen this main-screen action opens (edit, audit, …).
    Open(Action),
    /// A main-screen action, as if its key had been pressed there (the
    /// palette's jumps).
    Main(Action),
    /// Quit keyfall, asking first when edits would be lost.
    Quit,
    /// Show the world at this moment (the audit view's `@`).
    Travel(Moment),
}

impl From<Vec<Cmd>> for Outcome {
    fn from(cmds: Vec<Cmd>) -> Outcome {
        Outcome::Done(cmds)
    }
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
pub(super) struct SettingsCache {
    pub(super) loaded: HashSet<i64>,
    pub(super) requested: HashSet<i64>,
    /// In-flight settings requests and the accounts each asked for.
    pub(super) in_flight: HashMap<u64, Vec<i64>>,
}

impl SettingsCache {
    /// `request` asks for these accounts.
    pub(super) fn asked(&mut self, request: u64, account_ids: &[i64]) {
        self.requested.extend(account_ids.iter().copied());
        self.in_flight.insert(request, account_ids.to_vec());
    }

    /// `request` is answered or failed: its accounts are no longer on
    /// their way. False when it was not a settings request.
    pub(super) fn settled(&mut self, request: u64) -> bool {
        let Some(ids) = self.in_flight.remove(&request) else { return false };
        for id in ids {
            self.requested.remove(&id);
        }
        true
    }

    /// In memory, or on its way.
    pub(super) fn holds(&self, account_id: i64) -> bool {
        self.loaded.contains(&account_id) || self.requested.contains(&account_id)
    }

    pub(super) fn clear(&mut self) {
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
    pub main: main::MainState,
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
    pub(super) pending: live::Pending,
    /// Whose settings are in memory, and whose are on their way.
    pub(super) cache: SettingsCache,
    /// When to try booting again after a failed boot, and how often it failed.
    pub(super) boot_retry: Option<(DateTime<Utc>, u32)>,
    /// Request ids, and the newest of each kind (latest reply wins).
    pub(super) requests: request::Tracker,
    /// The user picker's search in flight and the query typed meanwhile.
    pub(super) user_search: picker::UserSearch,
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
            main: main::MainState::default(),
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

    pub(super) fn request(&mut self) -> u64 {
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
        widgets::accounts_height(self.size)
    }
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

pub(super) fn load_settings(model: &mut Model, account_ids: Vec<i64>) -> Cmd {
    let request = model.request();
    model.cache.asked(request, &account_ids);
    Cmd::LoadSettings { request, account_ids }
}

/// Ask for what resolving as the panel's user and function needs; as of a
/// moment, the user and the world as they were.
pub(crate) fn resolve_cmd(model: &mut Model) -> Vec<Cmd> {
    let (Some(email), Some(function)) = (model.resolve.email.clone(), model.resolve.function.clone()) else {
        return Vec::new();
    };
    let request = model.requests.start(request::Kind::Resolve);
    match model.time.as_of.as_ref() {
        Some(as_of) => vec![Cmd::ResolveAt { request, cut: as_of.cut, email, function }],
        None => vec![Cmd::Resolve { request, email, function }],
    }
}
