//! Key bindings are data: the defaults live in `assets/keys.toml`, the
//! user's config file may override any action, and the help overlay is
//! generated from the keymap in force — never written by hand.

use std::collections::BTreeMap;

/// What a key does. The doc line of each is what help shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Quit,
    Help,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Filter,
    NextTab,
    PrevTab,
    Tab1,
    Tab2,
    Tab3,
    Tab4,
    PickUser,
    PickFunction,
    Permissions,
    Refresh,
    Edit,
    Reveal,
    Audit,
    ChainPolicy,
    Lint,
    TestConnection,
    Delete,
    Save,
    ToggleActive,
    Cancel,
    Accept,
}

impl Action {
    pub const ALL: [Action; 32] = [
        Action::Quit,
        Action::Help,
        Action::NextPane,
        Action::PrevPane,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Filter,
        Action::NextTab,
        Action::PrevTab,
        Action::Tab1,
        Action::Tab2,
        Action::Tab3,
        Action::Tab4,
        Action::PickUser,
        Action::PickFunction,
        Action::Permissions,
        Action::Refresh,
        Action::Edit,
        Action::Reveal,
        Action::Audit,
        Action::ChainPolicy,
        Action::Lint,
        Action::TestConnection,
        Action::Delete,
        Action::Save,
        Action::ToggleActive,
        Action::Cancel,
        Action::Accept,
    ];

    /// The name used in the keys file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::NextPane => "next_pane",
            Action::PrevPane => "prev_pane",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Filter => "filter",
            Action::NextTab => "next_tab",
            Action::PrevTab => "prev_tab",
            Action::Tab1 => "tab_1",
            Action::Tab2 => "tab_2",
            Action::Tab3 => "tab_3",
            Action::Tab4 => "tab_4",
            Action::PickUser => "pick_user",
            Action::PickFunction => "pick_function",
            Action::Permissions => "permissions",
            Action::Refresh => "refresh",
            Action::Edit => "edit",
            Action::Reveal => "reveal",
            Action::Audit => "audit",
            Action::ChainPolicy => "chain_policy",
            Action::Lint => "lint",
            Action::TestConnection => "test_connection",
            Action::Delete => "delete",
            Action::Save => "save",
            Action::ToggleActive => "toggle_active",
            Action::Cancel => "cancel",
            Action::Accept => "accept",
        }
    }

    /// One line for the help overlay.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit keyfall",
            Action::Help => "show or hide this help",
            Action::NextPane => "next pane",
            Action::PrevPane => "previous pane",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "first row",
            Action::Bottom => "last row",
            Action::Filter => "filter accounts (fuzzy)",
            Action::NextTab => "next integration type",
            Action::PrevTab => "previous integration type",
            Action::Tab1 => "OpenAI tab",
            Action::Tab2 => "Runware tab",
            Action::Tab3 => "Image generation tab",
            Action::Tab4 => "fourth tab (an unknown type, if any)",
            Action::PickUser => "resolve as… pick a user",
            Action::PickFunction => "resolve as… pick an AI function",
            Action::Permissions => "why can/can't this user change settings (checks)",
            Action::Refresh => "reload everything from the database",
            Action::Edit => "edit the setting (or create an override)",
            Action::Reveal => "reveal the key (asks first; audited; hides after 10 s)",
            Action::Audit => "audit log of this setting, with revert",
            Action::ChainPolicy => "chain and policy (K/J move, x remove, + add selected, p policy)",
            Action::Lint => "lint findings (enter jump, f fix)",
            Action::TestConnection => "test the key that answers here, for real",
            Action::Delete => "delete the account's own setting",
            Action::Save => "editor: preview the save (diff and impact)",
            Action::ToggleActive => "editor: toggle active",
            Action::Cancel => "close, clear the filter",
            Action::Accept => "choose",
        }
    }

    fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: BTreeMap<String, Action>,
    by_action: BTreeMap<Action, Vec<String>>,
}

const DEFAULT_KEYS: &str = include_str!("../../assets/keys.toml");

impl Keymap {
    /// The defaults, with `overrides` (action name → keys) replacing whole
    /// actions. Unknown actions or key names are an error naming them.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        let defaults: BTreeMap<String, Vec<String>> =
            toml::from_str(DEFAULT_KEYS).map_err(|e| format!("built-in keys: {e}"))?;
        let mut by_action = BTreeMap::new();
        for (name, keys) in defaults.iter().chain(overrides) {
            let action = Action::parse(name).ok_or_else(|| format!("unknown action {name:?} in [keys]"))?;
            for key in keys {
                if !valid_key(key) {
                    return Err(format!("unknown key {key:?} for {name} in [keys]"));
                }
            }
            by_action.insert(action, keys.clone());
        }
        let mut by_key = BTreeMap::new();
        for (action, keys) in &by_action {
            for key in keys {
                by_key.insert(key.clone(), *action);
            }
        }
        Ok(Keymap { by_key, by_action })
    }

    pub fn default_keys() -> Keymap {
        Keymap::new(&BTreeMap::new()).expect("the built-in keys parse")
    }

    pub fn action(&self, key: &str) -> Option<Action> {
        self.by_key.get(key).copied()
    }

    /// The keys bound to an action, for hints: `q/ctrl-c`.
    pub fn keys(&self, action: Action) -> String {
        self.by_action.get(&action).map(|k| k.join("/")).unwrap_or_default()
    }

    /// The first key of an action, for the footer.
    pub fn first_key(&self, action: Action) -> &str {
        self.by_action.get(&action).and_then(|k| k.first()).map(String::as_str).unwrap_or("?")
    }

    /// (keys, description) for every bound action, in help order.
    pub fn help(&self) -> Vec<(String, &'static str)> {
        Action::ALL
            .into_iter()
            .filter(|a| self.by_action.get(a).is_some_and(|k| !k.is_empty()))
            .map(|a| (self.keys(a), a.describe()))
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
    fn defaults_cover_every_action() {
        let keymap = Keymap::default_keys();
        for action in Action::ALL {
            assert!(!keymap.keys(action).is_empty(), "{action:?} has no key");
        }
        assert_eq!(keymap.action("q"), Some(Action::Quit));
        assert_eq!(keymap.action("ctrl-c"), Some(Action::Quit));
    }

    #[test]
    fn overrides_replace_and_are_validated() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["ctrl-q".to_string()]);
        let keymap = Keymap::new(&o).unwrap();
        assert_eq!(keymap.action("ctrl-q"), Some(Action::Quit));
        assert_eq!(keymap.action("q"), None);
        assert!(keymap.help().iter().any(|(k, d)| k == "ctrl-q" && *d == "quit keyfall"));
        o.insert("fly".to_string(), vec!["x".to_string()]);
        assert!(Keymap::new(&o).unwrap_err().contains("fly"));
        let mut bad = BTreeMap::new();
        bad.insert("quit".to_string(), vec!["hyper-q".to_string()]);
        assert!(Keymap::new(&bad).is_err());
    }
}
