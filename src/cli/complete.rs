//! `keyfall __complete`: what the shell completion scripts ask while a user
//! types. Given the words of the command line and the index of the one
//! being completed, it says whether that word is a name from the data (an
//! account slug, a user email, an AI function) or from the registry (an
//! integration type, a field of one) and prints the candidates, one a line
//! (exit 0); anything else — a subcommand, an option, a file — is left to
//! the static script (exit 1, nothing printed). Reading the database is
//! one index range scan over a connection that must come within a second;
//! when none does, nothing is printed: completion never says an error.
//!
//! Why not clap_complete's `unstable-dynamic`: its shell-to-binary protocol
//! is unstable by name (a script from one version may not fit the next),
//! and it needs two more crates and clap's `unstable-ext`. The static
//! scripts keep working as they did; this adds only the names.

use std::time::Duration;

use clap::CommandFactory;

use crate::config::{Config, Overrides};
use crate::store::{Completable, Store, connect};

use super::{Cli, Exit};

/// What a word is, for completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A name read from the database.
    Data(Completable),
    /// An integration type of the registry.
    Type,
    /// A field of this type (any type's when not known yet), or is_active.
    Field(Option<String>),
}

/// One completion request: the words typed, the one being completed.
pub struct Request {
    pub database_url: Option<String>,
    pub config_file: Option<std::path::PathBuf>,
    pub index: usize,
    /// Only say whether the word is one keyfall completes (exit 0 or 1).
    pub check: bool,
    pub words: Vec<String>,
}

/// How long completion waits for the database, connecting and querying.
const PATIENCE: Duration = Duration::from_millis(1500);

/// Print the candidates for `words[index]` (exit 0), or nothing (exit 1)
/// where the static script knows better.
pub async fn run(request: Request) -> Exit {
    let Request { database_url, config_file, index, check, words } = request;
    let Some((kind, prefix)) = kind_at(&words, index) else {
        return Exit::Negative;
    };
    if check {
        return Exit::Ok;
    }
    let names: Vec<String> = match &kind {
        Kind::Type => crate::domain::registry::type_names().map(str::to_string).collect(),
        Kind::Field(ty) => {
            let mut fields: Vec<String> = match ty.as_deref().and_then(crate::domain::registry::spec) {
                Some(spec) => spec.fields.iter().map(|f| f.name.to_string()).collect(),
                None => crate::domain::registry::type_names()
                    .filter_map(crate::domain::registry::spec)
                    .flat_map(|s| s.fields.iter().map(|f| f.name.to_string()))
                    .collect(),
            };
            fields.push("is_active".into());
            fields.sort();
            fields.dedup();
            fields
        }
        Kind::Data(what) => {
            // The database the command being typed would use: its
            // `--context` (else KEYFALL_CONTEXT or the default context).
            let context = typed_option(&words, "--context");
            let overrides =
                Overrides { database_url, operator: None, config_file, read_only: true, context, no_mouse: true };
            match tokio::time::timeout(PATIENCE, from_database(overrides, *what, &prefix)).await {
                Ok(Some(names)) => names,
                _ => Vec::new(),
            }
        }
    };
    let lower = prefix.to_lowercase();
    for name in names.iter().filter(|n| n.to_lowercase().starts_with(&lower)) {
        // One name a line: a name with a line break or a control character
        // in it is not offered (the shell would take it as two).
        if !name.chars().any(char::is_control) {
            outln!("{name}");
        }
    }
    Exit::Ok
}

/// The value given to `option` among the words typed (`--context prod` or
/// `--context=prod`), if any.
fn typed_option(words: &[String], option: &str) -> Option<String> {
    let joined = format!("{option}=");
    words.iter().enumerate().find_map(|(i, w)| {
        if w == option { words.get(i + 1).cloned() } else { w.strip_prefix(&joined).map(str::to_string) }
    })
}

/// The names of `what` starting with `prefix`, or `None` when no database
/// answers (nothing is started, created or said).
async fn from_database(overrides: Overrides, what: Completable, prefix: &str) -> Option<Vec<String>> {
    let config = Config::load(overrides).ok()?;
    let url = config.database_url.as_ref().map(|u| u.expose());
    let mut target = connect::discover_running(url, &config.data_dir).await?;
    target.connect_timeout = Some(Duration::from_secs(1));
    target.options = target.options.options([("statement_timeout", "1000ms")]);
    let store = Store::connect_single(&target).await.ok()?;
    let names = store.completions(what, prefix).await.ok();
    store.close().await;
    names
}

/// What `words[index]` is, and what of it is typed so far; `None` where it
/// is not a name keyfall knows (a subcommand, an option, a file, a number).
pub fn kind_at(words: &[String], index: usize) -> Option<(Kind, String)> {
    let current = words.get(index).cloned().unwrap_or_default();
    let mut command = Cli::command();
    command.build();
    let mut command = &command;
    let mut positionals = 0usize;
    let mut pending: Option<String> = None;
    let mut typed_type: Option<String> = None;
    let mut only_positionals = false;
    for word in words.iter().take(index).skip(1) {
        if let Some(id) = pending.take() {
            if id == "integration_type" {
                typed_type = Some(word.clone());
            }
            continue;
        }
        if !only_positionals && word == "--" {
            only_positionals = true;
            continue;
        }
        if !only_positionals && word.starts_with('-') && word.len() > 1 {
            let arg = match word.strip_prefix("--") {
                Some(long) => {
                    let name = long.split('=').next().unwrap_or_default();
                    command.get_arguments().find(|a| a.get_long() == Some(name))
                }
                None => {
                    let short = word.chars().nth(1);
                    command.get_arguments().find(|a| a.get_short() == short)
                }
            };
            if let Some(arg) = arg
                && arg.get_action().takes_values()
                && !word.contains('=')
            {
                pending = Some(arg.get_id().to_string());
            }
            continue;
        }
        if positionals == 0
            && let Some(sub) = command.find_subcommand(word)
        {
            command = sub;
            continue;
        }
        if let Some(arg) = command.get_positionals().nth(positionals)
            && arg.get_id() == "integration_type"
        {
            typed_type = Some(word.clone());
        }
        positionals += 1;
    }
    let id = match pending {
        Some(id) => id,
        None if current.starts_with('-') => return None,
        None if command.has_subcommands() && positionals == 0 => return None,
        None => {
            let all: Vec<&clap::Arg> = command.get_positionals().collect();
            let arg = all
                .get(positionals)
                .copied()
                .or_else(|| all.iter().rev().find(|a| a.get_num_args().is_some_and(|n| n.max_values() > 1)).copied())?;
            arg.get_id().to_string()
        }
    };
    let kind = match id.as_str() {
        "user" | "operator" | "email" | "actor" => Kind::Data(Completable::Email),
        "account" | "slugs" | "slug" => Kind::Data(Completable::Slug),
        "function" => Kind::Data(Completable::Function),
        "integration_type" => Kind::Type,
        "field" => Kind::Field(typed_type),
        _ => return None,
    };
    Some((kind, current))
}

/// The completion script of `shell`: clap's static one (subcommands,
/// options, enumerated values; names from the data offer no files), with
/// the hook that asks `keyfall __complete` first (bash, zsh, fish).
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut script = Vec::new();
    // Into memory first: clap_complete panics on a write error
    // (`keyfall completions bash | head`).
    clap_complete::generate(shell, &mut no_files(Cli::command()), "keyfall", &mut script);
    data_hook(shell, String::from_utf8_lossy(&script).into_owned()).into_bytes()
}

/// Whether an argument names data (a slug, an email, a function, a type,
/// a field): completed by asking keyfall, never with file names.
fn names_data(arg: &clap::Arg) -> bool {
    matches!(
        arg.get_id().as_str(),
        "user" | "operator" | "email" | "actor" | "account" | "slugs" | "function" | "integration_type" | "field"
    )
}

/// Every argument naming data hinted as "not a file", in every subcommand.
fn no_files(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| if names_data(&arg) { arg.value_hint(clap::ValueHint::Other) } else { arg })
        .mut_subcommands(no_files)
}

/// The long names of every option naming data, in every subcommand.
fn data_options(command: &clap::Command, longs: &mut Vec<String>) {
    for arg in command.get_arguments().filter(|a| names_data(a)) {
        if let Some(long) = arg.get_long() {
            longs.push(long.to_string());
        }
    }
    for sub in command.get_subcommands() {
        data_options(sub, longs);
    }
}

/// What each shell's script gains over clap's static one: ask
/// `keyfall __complete` first, and fall back to the static completion
/// where it has nothing to say.
fn data_hook(shell: clap_complete::Shell, script: String) -> String {
    use clap_complete::Shell;
    match shell {
        Shell::Bash => format!("{script}\n{BASH_HOOK}"),
        Shell::Fish => {
            // fish completes an option's value only from that option's own
            // entries: one per option that names data.
            let mut longs = Vec::new();
            data_options(&Cli::command(), &mut longs);
            longs.sort();
            longs.dedup();
            let options: String = longs
                .iter()
                .map(|l| {
                    format!("complete -c keyfall -l {l} -r -f -n '__keyfall_data --check' -a '(__keyfall_data)'\n")
                })
                .collect();
            format!("{script}\n{FISH_HOOK}{options}")
        }
        Shell::Zsh => {
            // Both ways zsh loads the file — autoloaded from fpath, or
            // sourced — end in the data-aware function.
            let tail_from = "if [ \"$funcstack[1]\" = \"_keyfall\" ]; then";
            match script.rfind(tail_from) {
                Some(at) => format!("{}{ZSH_HOOK}", &script[..at]),
                None => script,
            }
        }
        _ => script,
    }
}

const BASH_HOOK: &str = r#"# Names from the database and the registry, asked of keyfall itself.
_keyfall_data() {
    local cur="${COMP_WORDS[COMP_CWORD]}" out
    if out=$("${COMP_WORDS[0]}" __complete --index "$COMP_CWORD" -- "${COMP_WORDS[@]}" 2>/dev/null); then
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$out" -- "$cur"))
        compopt +o default +o bashdefault 2>/dev/null
        return 0
    fi
    _keyfall "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _keyfall_data -o nosort -o bashdefault -o default keyfall
else
    complete -F _keyfall_data -o bashdefault -o default keyfall
fi
"#;

const ZSH_HOOK: &str = r#"# Names from the database and the registry, asked of keyfall itself.
_keyfall_data() {
    local out
    if out=$("${words[1]}" __complete --index $((CURRENT - 1)) -- "${words[@]}" 2>/dev/null); then
        compadd -- ${(f)out}
        return 0
    fi
    _keyfall "$@"
}

if [ "$funcstack[1]" = "_keyfall" ]; then
    compdef _keyfall_data keyfall
    _keyfall_data "$@"
else
    compdef _keyfall_data keyfall
fi
"#;

const FISH_HOOK: &str = r#"# Names from the database and the registry, asked of keyfall itself
# (the word being typed is passed even when empty).
function __keyfall_data
    set -l before (commandline -opc)
    set -l current (commandline -ct)
    test -n "$current"; or set current ''
    keyfall __complete $argv --index (count $before) -- $before $current 2>/dev/null
end
complete -c keyfall -f -n '__keyfall_data --check' -a '(__keyfall_data)'
"#;
