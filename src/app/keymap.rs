//! Key bindings are data: the defaults live in `assets/keys.toml`, one
//! section per screen plus `[global]`; the user's config file may override
//! any action on every screen or on one. Each screen handles typed
//! `Action`s only, and its help and footer hints are generated from the
//! keymap in force — never written by hand.

use std::collections::BTreeMap;

/// The help line of the key to the `index`th tab: the registry's types come
/// first ("OpenAI tab"), then any unknown type found in the data.
fn tab_line(index: usize) -> &'static str {
    static LINES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let ordinals = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"];
        let types = crate::domain::registry::TYPES.iter().map(|t| format!("{} tab", t.label));
        let unknown = ordinals.iter().map(|o| format!("{o} tab (an unknown type, if any)"));
        types.chain(unknown.skip(crate::domain::registry::TYPES.len())).collect()
    });
    LINES.get(index).map_or("a tab", String::as_str)
}

/// The names of the tab actions (`tab_1` … `tab_9`, bound to the digits).
const TAB_NAMES: [&str; 9] = ["tab_1", "tab_2", "tab_3", "tab_4", "tab_5", "tab_6", "tab_7", "tab_8", "tab_9"];

/// How many tabs have a key of their own (`1`, `2`, …): one per registry
/// type and one for the first unknown type found in the data, at most nine.
/// Tabs beyond them are reached with the next and previous tab keys.
pub fn tab_keys() -> usize {
    (crate::domain::registry::TYPES.len() + 1).min(TAB_NAMES.len())
}

/// What a key does. Which screens take an action is `Screen::actions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Quit,
    Help,
    Edit,
    PickUser,
    PickFunction,
    Permissions,
    Audit,
    Lint,
    TestConnection,
    Reveal,
    ChainPolicy,
    Filter,
    /// Straight to the `n`th tab (from 0): one per registry type and one
    /// for the first unknown type, at most nine (`tab_keys`).
    Tab(u8),
    NextPane,
    PrevPane,
    NextTab,
    PrevTab,
    Delete,
    Refresh,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Accept,
    Cancel,
    Close,
    Save,
    NextField,
    PrevField,
    RemoveField,
    ToggleActive,
    Confirm,
    Back,
    KeepEditing,
    Reload,
    Overwrite,
    Switch,
    Revert,
    Restore,
    Jump,
    Fix,
    Preview,
    MoveUp,
    MoveDown,
    Remove,
    Add,
    CyclePolicy,
    Copy,
    Merge,
    Messages,
    Palette,
    AsOf,
    KeyHistory,
}

impl Action {
    pub const ALL: [Action; 63] = [
        Action::Quit,
        Action::Help,
        Action::Edit,
        Action::PickUser,
        Action::PickFunction,
        Action::Permissions,
        Action::Audit,
        Action::Lint,
        Action::TestConnection,
        Action::Reveal,
        Action::ChainPolicy,
        Action::Filter,
        Action::Tab(0),
        Action::Tab(1),
        Action::Tab(2),
        Action::Tab(3),
        Action::Tab(4),
        Action::Tab(5),
        Action::Tab(6),
        Action::Tab(7),
        Action::Tab(8),
        Action::NextPane,
        Action::PrevPane,
        Action::NextTab,
        Action::PrevTab,
        Action::Delete,
        Action::Refresh,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Accept,
        Action::Cancel,
        Action::Close,
        Action::Save,
        Action::NextField,
        Action::PrevField,
        Action::RemoveField,
        Action::ToggleActive,
        Action::Confirm,
        Action::Back,
        Action::KeepEditing,
        Action::Reload,
        Action::Overwrite,
        Action::Switch,
        Action::Revert,
        Action::Restore,
        Action::Jump,
        Action::Fix,
        Action::Preview,
        Action::MoveUp,
        Action::MoveDown,
        Action::Remove,
        Action::Add,
        Action::CyclePolicy,
        Action::Copy,
        Action::Merge,
        Action::Messages,
        Action::Palette,
        Action::AsOf,
        Action::KeyHistory,
    ];

    /// The name used in the keys file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Edit => "edit",
            Action::PickUser => "pick_user",
            Action::PickFunction => "pick_function",
            Action::Permissions => "permissions",
            Action::Audit => "audit",
            Action::Lint => "lint",
            Action::TestConnection => "test_connection",
            Action::Reveal => "reveal",
            Action::ChainPolicy => "chain_policy",
            Action::Filter => "filter",
            Action::Tab(n) => TAB_NAMES.get(n as usize).copied().unwrap_or("tab"),
            Action::NextPane => "next_pane",
            Action::PrevPane => "prev_pane",
            Action::NextTab => "next_tab",
            Action::PrevTab => "prev_tab",
            Action::Delete => "delete",
            Action::Refresh => "refresh",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Accept => "accept",
            Action::Cancel => "cancel",
            Action::Close => "close",
            Action::Save => "save",
            Action::NextField => "next_field",
            Action::PrevField => "prev_field",
            Action::RemoveField => "remove_field",
            Action::ToggleActive => "toggle_active",
            Action::Confirm => "confirm",
            Action::Back => "back",
            Action::KeepEditing => "keep_editing",
            Action::Reload => "reload",
            Action::Overwrite => "overwrite",
            Action::Switch => "switch",
            Action::Revert => "revert",
            Action::Restore => "restore",
            Action::Jump => "jump",
            Action::Fix => "fix",
            Action::Preview => "preview",
            Action::MoveUp => "move_up",
            Action::MoveDown => "move_down",
            Action::Remove => "remove",
            Action::Add => "add",
            Action::CyclePolicy => "cycle_policy",
            Action::Copy => "copy",
            Action::Merge => "merge",
            Action::Messages => "messages",
            Action::Palette => "palette",
            Action::AsOf => "as_of",
            Action::KeyHistory => "key_history",
        }
    }

    /// Moving around: in help, not in the footer.
    pub fn is_navigation(self) -> bool {
        matches!(
            self,
            Action::Up
                | Action::Down
                | Action::PageUp
                | Action::PageDown
                | Action::Top
                | Action::Bottom
                | Action::PrevPane
                | Action::PrevTab
                | Action::NextTab
                | Action::Tab(1..)
                | Action::PrevField
        )
    }

    /// (footer word, help line) for this action on `screen`.
    pub fn text(self, screen: Screen) -> (&'static str, &'static str) {
        use Screen as S;
        match (screen, self) {
            (_, Action::Quit) => ("quit", "quit keyfall"),
            (_, Action::Help) => ("help", "show the keys of this screen and the others"),
            (_, Action::Edit) => ("edit", "edit the setting (or create an override)"),
            (_, Action::PickUser) => ("user", "resolve as… pick a user"),
            (_, Action::PickFunction) => ("function", "resolve as… pick an AI function"),
            (S::Lint, Action::Permissions) => ("permissions", "a user's finding (L007): their permissions"),
            (_, Action::Permissions) => ("permissions", "why can/can't this user view or change settings"),
            (_, Action::Audit) => ("audit", "audit log of this setting, with revert"),
            (_, Action::Lint) => ("lint", "lint findings, with fixes"),
            (_, Action::TestConnection) => ("test", "test the key that answers here, for real"),
            (_, Action::Reveal) => ("reveal", "reveal the key (asks; audited; hides in 10 s)"),
            (_, Action::ChainPolicy) => ("chain", "the fallback chain and the policy"),
            (S::Lint, Action::Filter) => ("filter", "filter findings by rule, account slug or name, or text"),
            (_, Action::Filter) => ("filter", "filter accounts by slug or name (fuzzy)"),
            (_, Action::Tab(0)) => ("type", tab_line(0)),
            (_, Action::Tab(n)) => ("", tab_line(n as usize)),
            (_, Action::NextPane) => ("pane", "next pane"),
            (_, Action::PrevPane) => ("", "previous pane"),
            (_, Action::NextTab) => ("", "next integration type"),
            (_, Action::PrevTab) => ("", "previous integration type"),
            (_, Action::Delete) => ("delete", "delete the account's own setting (asks)"),
            (S::Lint, Action::Refresh) => {
                ("reread", "read the findings again (after a change, the list says it is stale)")
            }
            (_, Action::Refresh) => ("reload", "reload everything from the database"),
            (_, Action::Up) => ("", "move up"),
            (_, Action::Down) => ("", "move down"),
            (_, Action::PageUp) => ("", "page up"),
            (_, Action::PageDown) => ("", "page down"),
            (_, Action::Top) => ("", "first row"),
            (_, Action::Bottom) => ("", "last row"),
            (S::Main, Action::Accept) => ("", "from the accounts to the setting"),
            (S::Filter, Action::Accept) => ("keep", "keep the filter, back to the list"),
            (S::Delete, Action::Accept) => ("choose", "press the focused button"),
            (S::Merge, Action::Accept) => ("merge", "merge with these choices, then preview the save"),
            (_, Action::Accept) => ("choose", "choose"),
            (S::Main, Action::Cancel) => {
                ("", "clear the filter, else close the permissions view, else (as of a moment) back to now")
            }
            (S::Filter, Action::Cancel) => ("clear", "clear the filter"),
            (S::Editor, Action::Cancel) => ("cancel", "close the form (asks if you changed something)"),
            (S::Waiting, Action::Cancel) => ("stop waiting", "stop waiting (a late reply is dropped)"),
            (S::Confirm, Action::Cancel) => ("no", "no"),
            (S::Merge, Action::Cancel) => ("back", "back to the conflict"),
            (_, Action::Cancel) => ("cancel", "close"),
            (_, Action::Close) => ("close", "close"),
            (_, Action::Save) => ("save", "preview the save: diff and impact"),
            (_, Action::NextField) => ("next field", "next field"),
            (_, Action::PrevField) => ("", "previous field"),
            (_, Action::RemoveField) => ("remove field", "remove the focused field from the setting"),
            (_, Action::ToggleActive) => ("active", "toggle active"),
            (S::SavePreview, Action::Confirm) => ("save", "save (version-checked, audited)"),
            (S::ChainPolicyPreview, Action::Confirm) => ("apply", "apply (audited)"),
            (_, Action::Confirm) => ("yes", "yes"),
            (S::SavePreview, Action::Back) => ("back", "back to the form"),
            (_, Action::Back) => ("back", "back"),
            (_, Action::KeepEditing) => ("keep editing", "back to your edits, rebased on their version"),
            (_, Action::Reload) => ("reload", "drop your edits (asks), show what is stored"),
            (_, Action::Overwrite) => ("overwrite", "save over theirs (asks; recorded as an overwrite)"),
            (S::Merge, Action::Switch) => ("theirs/yours", "keep their value or yours for this field"),
            (_, Action::Switch) => ("switch", "move between Cancel and Delete"),
            (_, Action::Revert) => ("revert", "revert this entry (through the editor)"),
            (_, Action::Restore) => ("restore", "restore the setting to just before this entry (through the editor)"),
            (_, Action::Jump) => ("open", "go to the finding's setting; on a group, open or close it"),
            (_, Action::Fix) => ("fix", "open the fix in the editor"),
            (_, Action::Preview) => ("preview", "preview who resolves or may act differently"),
            (_, Action::MoveUp) => ("up", "move the system account up the chain"),
            (_, Action::MoveDown) => ("down", "move the system account down the chain"),
            (_, Action::Remove) => ("remove", "remove the system account from the chain"),
            (_, Action::Add) => ("add", "add the account selected in the list"),
            (_, Action::CyclePolicy) => ("policy", "next policy (A, B, C)"),
            (_, Action::Merge) => ("merge", "apply your changed fields on top of theirs (both changed: you choose)"),
            (_, Action::Copy) => ("copy", "copy slug, key fingerprint or trace (OSC 52); a revealed key"),
            (S::Messages, Action::Messages) => ("", "close the message log"),
            (_, Action::Messages) => ("log", "message log: this session's notices, with times"),
            (_, Action::Palette) => ("jump", "jump to an account, a user, a screen or a context (:ctx NAME)"),
            (S::Audit, Action::AsOf) => ("as of", "the world just before this change (as of #N), read-only"),
            (_, Action::AsOf) => ("as of", "the world as it was at a moment (ISO, 3 days ago, #812), read-only"),
            (_, Action::KeyHistory) => ("blast", "the blast radius of the key shown: who resolved to it, when"),
        }
    }
}

/// A screen: what has the keys. Its section in the keys file is `name()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Screen {
    Main,
    Filter,
    Help,
    Picker,
    Editor,
    SavePreview,
    Conflict,
    Confirm,
    Delete,
    Waiting,
    Audit,
    Lint,
    ChainPolicy,
    ChainPolicyPreview,
    Merge,
    Messages,
    Palette,
    AsOf,
    KeyHistory,
}

impl Screen {
    pub const ALL: [Screen; 19] = [
        Screen::Main,
        Screen::Filter,
        Screen::Help,
        Screen::Picker,
        Screen::Editor,
        Screen::SavePreview,
        Screen::Conflict,
        Screen::Confirm,
        Screen::Delete,
        Screen::Waiting,
        Screen::Audit,
        Screen::Lint,
        Screen::ChainPolicy,
        Screen::ChainPolicyPreview,
        Screen::Merge,
        Screen::Messages,
        Screen::Palette,
        Screen::AsOf,
        Screen::KeyHistory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Screen::Main => "main",
            Screen::Filter => "filter",
            Screen::Help => "help",
            Screen::Picker => "picker",
            Screen::Editor => "editor",
            Screen::SavePreview => "save_preview",
            Screen::Conflict => "conflict",
            Screen::Confirm => "confirm",
            Screen::Delete => "delete",
            Screen::Waiting => "waiting",
            Screen::Audit => "audit",
            Screen::Lint => "lint",
            Screen::ChainPolicy => "chain_policy",
            Screen::ChainPolicyPreview => "chain_policy_preview",
            Screen::Merge => "merge",
            Screen::Messages => "messages",
            Screen::Palette => "palette",
            Screen::AsOf => "as_of",
            Screen::KeyHistory => "key_history",
        }
    }

    /// The heading of its part of help.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Main => "accounts, setting, resolve-as",
            Screen::Filter => "typing a filter",
            Screen::Help => "this help",
            Screen::Picker => "picking a user or a function",
            Screen::Editor => "the setting form",
            Screen::SavePreview => "the save preview",
            Screen::Conflict => "a conflict (someone saved first)",
            Screen::Confirm => "a yes/no question",
            Screen::Delete => "deleting an override",
            Screen::Waiting => "waiting for the database",
            Screen::Audit => "the audit log",
            Screen::Lint => "lint findings",
            Screen::ChainPolicy => "the chain and the policy",
            Screen::ChainPolicyPreview => "the chain and policy preview",
            Screen::Merge => "merging: fields both sides changed",
            Screen::Messages => "the message log",
            Screen::Palette => "jumping (:)",
            Screen::AsOf => "as of… (choosing a moment)",
            Screen::KeyHistory => "the blast radius of a key",
        }
    }

    /// Characters typed here are text: only named, ctrl- and alt- keys act.
    pub fn takes_text(self) -> bool {
        matches!(self, Screen::Filter | Screen::Picker | Screen::Editor | Screen::Palette | Screen::AsOf)
    }

    /// The actions this screen handles, the most useful first (the footer
    /// shows as many as fit, in this order).
    pub fn actions(self) -> &'static [Action] {
        use Action as A;
        match self {
            Screen::Main => &[
                A::Help,
                A::Edit,
                A::PickUser,
                A::PickFunction,
                A::Permissions,
                A::Audit,
                A::Lint,
                A::TestConnection,
                A::Reveal,
                A::ChainPolicy,
                A::Copy,
                A::Messages,
                A::Filter,
                A::Tab(0),
                A::Tab(1),
                A::Tab(2),
                A::Tab(3),
                A::Tab(4),
                A::Tab(5),
                A::Tab(6),
                A::Tab(7),
                A::Tab(8),
                A::NextPane,
                A::PrevPane,
                A::NextTab,
                A::PrevTab,
                A::Delete,
                A::Refresh,
                A::AsOf,
                A::KeyHistory,
                A::Up,
                A::Down,
                A::PageUp,
                A::PageDown,
                A::Top,
                A::Bottom,
                A::Accept,
                A::Cancel,
                A::Palette,
                A::Quit,
            ],
            Screen::Filter => &[A::Accept, A::Cancel, A::Up, A::Down, A::PageUp, A::PageDown],
            Screen::Help => &[A::Close, A::Down, A::Up, A::PageDown, A::PageUp, A::Top, A::Bottom],
            Screen::Picker => &[A::Accept, A::Cancel, A::Up, A::Down, A::PageUp, A::PageDown],
            Screen::Editor => &[A::Save, A::NextField, A::PrevField, A::RemoveField, A::ToggleActive, A::Cancel],
            Screen::SavePreview => &[A::Confirm, A::Back, A::Down, A::Up, A::PageDown, A::PageUp, A::Top, A::Bottom],
            Screen::Conflict => &[A::Merge, A::KeepEditing, A::Reload, A::Overwrite],
            Screen::Merge => &[A::Switch, A::Accept, A::Cancel, A::Down, A::Up],
            Screen::Confirm => &[A::Confirm, A::Cancel],
            Screen::Delete => {
                &[A::Switch, A::Accept, A::Cancel, A::Down, A::Up, A::PageDown, A::PageUp, A::Top, A::Bottom]
            }
            Screen::Waiting => &[A::Cancel],
            Screen::Audit => &[
                A::Revert,
                A::Restore,
                A::AsOf,
                A::Help,
                A::Down,
                A::Up,
                A::PageDown,
                A::PageUp,
                A::Top,
                A::Bottom,
                A::Close,
            ],
            Screen::Lint => &[
                A::Jump,
                A::Fix,
                A::Filter,
                A::Permissions,
                A::Refresh,
                A::Help,
                A::Down,
                A::Up,
                A::PageDown,
                A::PageUp,
                A::Top,
                A::Bottom,
                A::Close,
            ],
            Screen::ChainPolicy => &[
                A::Preview,
                A::MoveUp,
                A::MoveDown,
                A::Remove,
                A::Add,
                A::CyclePolicy,
                A::Help,
                A::Down,
                A::Up,
                A::Close,
            ],
            Screen::ChainPolicyPreview => {
                &[A::Confirm, A::Back, A::Down, A::Up, A::PageDown, A::PageUp, A::Top, A::Bottom]
            }
            Screen::Messages => &[A::Close, A::Down, A::Up, A::PageDown, A::PageUp, A::Top, A::Bottom, A::Messages],
            Screen::Palette => &[A::Accept, A::Cancel, A::Up, A::Down, A::PageUp, A::PageDown],
            Screen::AsOf => &[A::Accept, A::Cancel, A::Up, A::Down],
            Screen::KeyHistory => &[A::Close, A::Down, A::Up, A::PageDown, A::PageUp, A::Top, A::Bottom],
        }
    }

    fn parse(name: &str) -> Option<Screen> {
        Screen::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The actions `[global]` may bind: they work on every screen.
const GLOBAL_ACTIONS: [Action; 3] = [Action::Quit, Action::Help, Action::Messages];

/// One section's bindings.
#[derive(Debug, Clone, Default)]
struct Bindings {
    by_key: BTreeMap<String, Action>,
    by_action: BTreeMap<Action, Vec<String>>,
}

impl Bindings {
    fn bind(&mut self, action: Action, keys: Vec<String>) {
        self.by_action.insert(action, keys);
        self.by_key = self.by_action.iter().flat_map(|(a, ks)| ks.iter().map(move |k| (k.clone(), *a))).collect();
    }
}

#[derive(Debug, Clone)]
pub struct Keymap {
    global: Bindings,
    screens: BTreeMap<Screen, Bindings>,
}

const DEFAULT_KEYS: &str = include_str!("../../assets/keys.toml");

/// Where an override applies.
enum Section {
    Global,
    Screen(Screen),
}

impl Keymap {
    /// The defaults, with `overrides` replacing whole actions: a name
    /// `screen.action` on that screen, a bare `action` on every screen (and
    /// `[global]`) that has it. Unknown screens, actions or key names are
    /// an error naming them.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        let defaults: BTreeMap<String, BTreeMap<String, Vec<String>>> =
            toml::from_str(DEFAULT_KEYS).map_err(|e| format!("built-in keys: {e}"))?;
        let mut keymap = Keymap { global: Bindings::default(), screens: BTreeMap::new() };
        // The digits go to the tabs, as many as `tab_keys` says.
        for (n, name) in TAB_NAMES.iter().enumerate().take(tab_keys()) {
            keymap.bind(&Section::Screen(Screen::Main), name, &[(n + 1).to_string()])?;
        }
        for (section, actions) in &defaults {
            let section = match section.as_str() {
                "global" => Section::Global,
                other => Section::Screen(Screen::parse(other).ok_or_else(|| format!("built-in keys: [{other}]"))?),
            };
            for (name, keys) in actions {
                keymap.bind(&section, name, keys).map_err(|e| format!("built-in keys: {e}"))?;
            }
        }
        for (name, keys) in overrides {
            match name.split_once('.') {
                Some((section, action)) => {
                    let section = match section {
                        "global" => Section::Global,
                        other => Section::Screen(
                            Screen::parse(other).ok_or_else(|| format!("unknown screen [keys.{other}]"))?,
                        ),
                    };
                    keymap.bind(&section, action, keys)?;
                }
                None => {
                    let action = Action::ALL
                        .into_iter()
                        .find(|a| a.name() == name)
                        .ok_or_else(|| format!("unknown action {name:?} in [keys]"))?;
                    let mut sections: Vec<Section> = Screen::ALL
                        .into_iter()
                        .filter(|s| s.actions().contains(&action))
                        .map(Section::Screen)
                        .collect();
                    if GLOBAL_ACTIONS.contains(&action) {
                        sections.push(Section::Global);
                        // A bare override replaces the action everywhere:
                        // the screens' own keys for it go, the new ones are global.
                        for b in keymap.screens.values_mut() {
                            b.bind(action, Vec::new());
                        }
                        keymap.bind(&Section::Global, name, keys)?;
                        continue;
                    }
                    for section in &sections {
                        keymap.bind(section, name, keys)?;
                    }
                }
            }
        }
        Ok(keymap)
    }

    fn bind(&mut self, section: &Section, name: &str, keys: &[String]) -> Result<(), String> {
        let (allowed, bindings, where_): (&[Action], &mut Bindings, &str) = match section {
            Section::Global => (&GLOBAL_ACTIONS, &mut self.global, "global"),
            Section::Screen(s) => (s.actions(), self.screens.entry(*s).or_default(), s.name()),
        };
        let action = allowed
            .iter()
            .copied()
            .filter(|a| !matches!(a, Action::Tab(n) if *n as usize >= tab_keys()))
            .find(|a| a.name() == name)
            .ok_or_else(|| format!("unknown action {name:?} for [keys.{where_}]"))?;
        for key in keys {
            if !valid_key(key) {
                return Err(format!("unknown key {key:?} for {name} in [keys]"));
            }
        }
        bindings.bind(action, keys.to_vec());
        Ok(())
    }

    pub fn default_keys() -> Keymap {
        Keymap::new(&BTreeMap::new()).expect("the built-in keys parse")
    }

    /// What `key` does on `screen`: its own binding, else a global one.
    /// On screens that take text, a character is text, never an action.
    pub fn action(&self, screen: Screen, key: &str) -> Option<Action> {
        if screen.takes_text() && key.chars().count() == 1 {
            return None;
        }
        self.screens.get(&screen).and_then(|b| b.by_key.get(key)).or_else(|| self.global.by_key.get(key)).copied()
    }

    /// Every key bound to `action` on `screen`, its own first.
    pub fn keys(&self, screen: Screen, action: Action) -> Vec<&str> {
        let own = self.screens.get(&screen).and_then(|b| b.by_action.get(&action));
        let global = self.global.by_action.get(&action);
        let mut out: Vec<&str> = Vec::new();
        for k in own.into_iter().flatten().chain(global.into_iter().flatten()) {
            // A character on a text screen is text, never this action.
            if screen.takes_text() && k.chars().count() == 1 {
                continue;
            }
            if !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
        out
    }

    /// The first key of an action on a screen, for hints.
    pub fn first_key(&self, screen: Screen, action: Action) -> Option<&str> {
        self.keys(screen, action).into_iter().next()
    }

    /// (keys, description) of every bound action of `screen`, then the
    /// global ones it does not list.
    pub fn help(&self, screen: Screen) -> Vec<(String, &'static str)> {
        let listed = screen.actions().iter().copied();
        let global = GLOBAL_ACTIONS.into_iter().filter(|a| !screen.actions().contains(a));
        listed
            .chain(global)
            .filter_map(|a| {
                let keys = self.keys(screen, a);
                (!keys.is_empty()).then(|| (keys.join("/"), a.text(screen).1))
            })
            .collect()
    }
}

const NAMED: &[&str] = &[
    "enter",
    "esc",
    "tab",
    "backtab",
    "up",
    "down",
    "left",
    "right",
    "home",
    "end",
    "pageup",
    "pagedown",
    "space",
    "backspace",
    "delete",
    "insert",
];

fn valid_key(key: &str) -> bool {
    let base = key.strip_prefix("ctrl-").or_else(|| key.strip_prefix("alt-")).unwrap_or(key);
    base.chars().count() == 1
        || NAMED.contains(&base)
        || base.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()).is_some_and(|n| (1..=12).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_of_every_screen_has_a_key_and_words() {
        let keymap = Keymap::default_keys();
        for screen in Screen::ALL {
            for action in screen.actions() {
                // Tabs beyond the registry's (and one unknown type) have none.
                if matches!(action, Action::Tab(n) if *n as usize >= tab_keys()) {
                    assert!(keymap.keys(screen, *action).is_empty(), "{screen:?} {action:?} has a key");
                    continue;
                }
                assert!(!keymap.keys(screen, *action).is_empty(), "{screen:?} {action:?} has no key");
                assert!(!action.text(screen).1.is_empty(), "{screen:?} {action:?} has no help line");
            }
            // Every key leads to one action only.
            let mut seen = std::collections::BTreeSet::new();
            for action in screen.actions() {
                for key in keymap.screens.get(&screen).and_then(|b| b.by_action.get(action)).into_iter().flatten() {
                    assert!(seen.insert(key.clone()), "{screen:?}: {key} bound twice");
                }
            }
        }
        for action in Action::ALL {
            assert!(Screen::ALL.iter().any(|s| s.actions().contains(&action)), "{action:?} is on no screen");
        }
        assert_eq!(keymap.action(Screen::Main, "q"), Some(Action::Quit));
        assert_eq!(keymap.action(Screen::Main, "ctrl-c"), Some(Action::Quit));
        assert_eq!(keymap.action(Screen::Editor, "ctrl-c"), Some(Action::Quit));
        assert_eq!(keymap.action(Screen::Editor, "q"), None, "a character is text in the editor");
        assert_eq!(keymap.action(Screen::Lint, "q"), Some(Action::Close));
        assert_eq!(keymap.action(Screen::Lint, "enter"), Some(Action::Jump));
    }

    #[test]
    fn the_tab_keys_are_named_after_the_registry() {
        let lines: Vec<&str> = (0..tab_keys() as u8).map(|n| Action::Tab(n).text(Screen::Main).1).collect();
        for (line, t) in lines.iter().zip(crate::domain::registry::TYPES.iter()) {
            assert_eq!(*line, format!("{} tab", t.label));
        }
        assert_eq!(lines[0], "OpenAI tab");
        assert_eq!(lines[3], "fourth tab (an unknown type, if any)");
    }

    /// The digits go to the tabs: one per registry type and one for an
    /// unknown type; a provider added to the registry gets the next digit
    /// with no change here (run again in a process whose registry holds the
    /// test provider).
    #[test]
    #[cfg(debug_assertions)] // the test provider exists in debug builds only
    fn a_digit_per_registry_type_and_one_for_an_unknown_type() {
        use crate::domain::registry;
        let with_provider = std::env::var_os(registry::TEST_PROVIDER_ENV).is_some_and(|v| v == "1");
        if with_provider {
            registry::enable_test_provider();
        }
        let types = registry::TYPES.len();
        assert_eq!(tab_keys(), types + 1);
        let keymap = Keymap::default_keys();
        for n in 0..tab_keys() {
            assert_eq!(keymap.action(Screen::Main, &(n + 1).to_string()), Some(Action::Tab(n as u8)));
        }
        // No key beyond them, none listed in help, and none to bind.
        let beyond = tab_keys() + 1;
        assert_eq!(keymap.action(Screen::Main, &beyond.to_string()), None);
        assert!(!keymap.help(Screen::Main).iter().any(|(k, _)| *k == beyond.to_string()));
        let mut o = BTreeMap::new();
        o.insert(format!("tab_{beyond}"), vec!["x".to_string()]);
        assert!(Keymap::new(&o).unwrap_err().contains(&format!("tab_{beyond}")));
        if with_provider {
            // The added provider's tab has its digit, named after it.
            let at = registry::type_names().position(|t| t == "acme_ai").expect("the test provider");
            let digit = (at + 1).to_string();
            assert_eq!(keymap.action(Screen::Main, &digit), Some(Action::Tab(at as u8)));
            assert!(keymap.help(Screen::Main).iter().any(|(k, d)| *k == digit && *d == "Acme AI tab"));
            return;
        }
        let name = "app::keymap::tests::a_digit_per_registry_type_and_one_for_an_unknown_type";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads", "1"])
            .env(registry::TEST_PROVIDER_ENV, "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "with the test provider:\n{text}");
    }

    #[test]
    fn overrides_replace_and_are_validated() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["ctrl-q".to_string()]);
        o.insert("editor.save".to_string(), vec!["ctrl-w".to_string()]);
        o.insert("up".to_string(), vec!["ctrl-p".to_string()]);
        let keymap = Keymap::new(&o).unwrap();
        assert_eq!(keymap.action(Screen::Main, "ctrl-q"), Some(Action::Quit));
        assert_eq!(keymap.action(Screen::Main, "q"), None);
        assert_eq!(keymap.action(Screen::Main, "ctrl-c"), None);
        assert_eq!(keymap.action(Screen::Editor, "ctrl-w"), Some(Action::Save));
        assert_eq!(keymap.action(Screen::Editor, "ctrl-s"), None);
        assert_eq!(keymap.action(Screen::Lint, "ctrl-p"), Some(Action::Up), "a bare name is every screen's");
        assert!(keymap.help(Screen::Main).iter().any(|(k, d)| k == "ctrl-q" && *d == "quit keyfall"));
        o.insert("fly".to_string(), vec!["x".to_string()]);
        assert!(Keymap::new(&o).unwrap_err().contains("fly"));
        let mut bad = BTreeMap::new();
        bad.insert("quit".to_string(), vec!["hyper-q".to_string()]);
        assert!(Keymap::new(&bad).is_err());
        let mut bad = BTreeMap::new();
        bad.insert("lint.save".to_string(), vec!["s".to_string()]);
        assert!(Keymap::new(&bad).unwrap_err().contains("lint"));
    }
}
