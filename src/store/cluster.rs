//! The private PostgreSQL cluster (DESIGN §5): when nothing is configured and
//! no server answers locally, keyfall runs its own from the installed
//! binaries, under its data directory, reachable only by a Unix socket there.
//! Run as root, the cluster belongs to an unprivileged user (`postgres`, else
//! `nobody`), because PostgreSQL refuses to run as root. Blocking code: call
//! it from `spawn_blocking`.
//!
//! It holds every stored key, so it is private: the socket folder is `0700`
//! and owned by the cluster's user, and only that user and root may log in
//! (peer authentication through the `keyfall` map; nothing over TCP). A
//! cluster made by an older keyfall, open to every local user, is locked
//! down the next time keyfall starts or finds it.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser the cluster is initialised with.
pub const SUPERUSER: &str = "keyfall";
pub const PORT: u16 = 5432;

#[derive(Debug, Clone)]
pub struct PrivateCluster {
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub log_file: PathBuf,
    pub bin_dir: PathBuf,
    /// Whether this call started it (false: it was already running).
    pub started: bool,
    /// Whether this call ran initdb.
    pub created: bool,
    /// Whether this call had to lock down a cluster left open by an older
    /// keyfall (it was restarted, dropping any session opened meanwhile).
    pub locked_down: bool,
    /// The OS user the cluster runs as.
    pub owner: String,
}

impl PrivateCluster {
    /// The command that stops it, as whoever runs keyfall would type it.
    pub fn stop_command(&self) -> String {
        let pg_ctl = shell_quote(&self.bin_dir.join("pg_ctl").display().to_string());
        let data = shell_quote(&self.data_dir.display().to_string());
        let command = format!("{pg_ctl} -D {data} stop");
        if running_as_root() {
            // pg_ctl refuses to run as root; `cd /` because the cluster's user
            // may not be allowed into root's working folder.
            format!("cd / && runuser -u {} -- {command}", shell_quote(&self.owner))
        } else {
            command
        }
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no PostgreSQL server is configured or running, and no PostgreSQL binaries (initdb, pg_ctl) were found: install PostgreSQL (e.g. `apt install postgresql`), set KEYFALL_PG_BINDIR, or set DATABASE_URL"
    )]
    NoBinaries,
    #[error("private cluster in {dir}: {what}")]
    Failed { dir: String, what: String },
}

fn failed(dir: &Path, what: impl Into<String>) -> ClusterError {
    ClusterError::Failed { dir: dir.display().to_string(), what: what.into() }
}

/// Where PostgreSQL's server binaries live on this machine, if anywhere.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("KEYFALL_PG_BINDIR").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_tools(&dir) {
            return Some(dir);
        }
    }
    // Debian/Ubuntu keep the server binaries off PATH, one folder per major
    // version: prefer the newest.
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Some(dir);
    }
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let fixed = ["/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin", "/usr/pgsql/bin"];
    path_dirs.unwrap_or_default().into_iter().chain(fixed.iter().map(PathBuf::from)).find(|d| has_tools(d))
}

/// The unprivileged account to run PostgreSQL as when we are root.
fn unprivileged_user() -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let entry = |name: &str| {
        passwd.lines().find_map(|line| {
            let mut parts = line.split(':');
            if parts.next()? != name {
                return None;
            }
            let uid = parts.nth(1)?.parse().ok()?;
            let gid = parts.next()?.parse().ok()?;
            Some((uid, gid))
        })
    };
    entry("postgres").or_else(|| entry("nobody"))
}

/// The name of the account `uid`, from the system's user database.
pub(super) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; getpwuid_r writes
    // only into `pwd` and `buf`, and `found` is null or points at `pwd`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points at a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_str().ok().map(str::to_string)
}

/// Who may log in to a private cluster, over its socket (never over TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// keyfall's own cluster: peer authentication through the `keyfall`
    /// map, its OS user and root as the superuser, no one else.
    Owner,
    /// The tests' cluster (its own data directory, under the build's target
    /// folder): any role over the socket without a password (`trust`), so
    /// the roles the tests create (`keyfall_operator`, …) can log in as
    /// themselves. Reaching the socket at all takes the socket folder, which
    /// is `0700` and the cluster user's: the same OS users as `Owner`
    /// (that user and root), who can read the data files anyway.
    AnyRoleOnSocket,
}

/// Who may connect: for [`Access::Owner`] peer authentication only, mapped
/// to the superuser for the cluster's own user and root (who can read its
/// files anyway); for [`Access::AnyRoleOnSocket`] any role over the socket.
/// No TCP either way.
fn access_files(owner: &str, access: Access) -> (String, String) {
    let hba = match access {
        Access::Owner => {
            "\
# keyfall's private cluster: only its own OS user (and root) may connect, over
# the Unix socket, through the \"keyfall\" map in pg_ident.conf. keyfall
# rewrites this file when it starts or finds the cluster.
local   all   all   peer map=keyfall
host    all   all   all   reject
"
        }
        Access::AnyRoleOnSocket => {
            "\
# keyfall's test cluster: any role may connect over the Unix socket, whose
# folder (0700) only the cluster's OS user and root can enter; nothing over
# TCP. The roles the tests create log in as themselves. keyfall rewrites this
# file when it starts or finds the cluster.
local   all   all   trust
host    all   all   all   reject
"
        }
    }
    .to_string();
    let mut ident = format!(
        "# keyfall's private cluster: the OS users who may log in, and as whom.\n# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\nkeyfall  \"{owner}\"  {SUPERUSER}\n"
    );
    if owner != "root" {
        ident.push_str(&format!("keyfall  root  {SUPERUSER}\n"));
    }
    (hba, ident)
}

/// Write pg_hba.conf and pg_ident.conf as [`access_files`] says; whether
/// either had to change.
fn write_access_files(
    data_dir: &Path,
    owner: &str,
    ids: Option<(u32, u32)>,
    access: Access,
) -> Result<bool, ClusterError> {
    let (hba, ident) = access_files(owner, access);
    let mut changed = false;
    for (name, text) in [("pg_hba.conf", hba), ("pg_ident.conf", ident)] {
        let path = data_dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        fs::write(&path, text).map_err(|e| failed(&path, format!("cannot write: {e}")))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(|e| failed(&path, format!("cannot chmod: {e}")))?;
        if let Some((uid, gid)) = ids {
            chown(&path, Some(uid), Some(gid)).map_err(|e| failed(&path, format!("cannot chown: {e}")))?;
        }
        changed = true;
    }
    Ok(changed)
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Create (once) and start (when stopped) the private cluster under `base`.
pub fn ensure(base: &Path) -> Result<PrivateCluster, ClusterError> {
    ensure_with(base, Access::Owner)
}

/// [`ensure`], with who may log in: keyfall's own cluster is
/// [`Access::Owner`]; the tests' cluster, in a folder of its own,
/// [`Access::AnyRoleOnSocket`].
pub fn ensure_with(base: &Path, access: Access) -> Result<PrivateCluster, ClusterError> {
    let bin_dir = find_bin_dir().ok_or(ClusterError::NoBinaries)?;
    let data_dir = base.join("pgdata");
    let socket_dir = base.join("pgrun");
    let log_file = socket_dir.join("postgres.log");
    fs::create_dir_all(base).map_err(|e| failed(base, format!("cannot create: {e}")))?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&socket_dir)
        .map_err(|e| failed(&socket_dir, format!("cannot create: {e}")))?;

    // One keyfall (or test thread) at a time initialises and starts it.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(base.join("cluster.lock"))
        .map_err(|e| failed(base, format!("cannot open lock: {e}")))?;
    lock.lock().map_err(|e| failed(base, format!("cannot lock: {e}")))?;

    let owner = if running_as_root() {
        Some(unprivileged_user().ok_or_else(|| {
            failed(base, "running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")
        })?)
    } else {
        None
    };
    let run = |program: &str, args: &[&std::ffi::OsStr]| -> Result<Output, ClusterError> {
        let mut cmd = Command::new(bin_dir.join(program));
        cmd.args(args).current_dir(base).env("LC_ALL", "C").env_remove("PGDATA");
        if let Some((uid, gid)) = owner {
            cmd.uid(uid).gid(gid);
        }
        cmd.output().map_err(|e| failed(&data_dir, format!("cannot run {program}: {e}")))
    };
    if let Some((uid, gid)) = owner {
        for dir in [base, socket_dir.as_path()] {
            chown(dir, Some(uid), Some(gid)).map_err(|e| failed(dir, format!("cannot chown: {e}")))?;
        }
    }
    // The socket folder is the cluster user's alone (older keyfalls left it
    // open to everyone): refuse one that is not a real folder of theirs.
    let owner_uid = owner.map_or_else(
        || {
            // SAFETY: geteuid has no preconditions and cannot fail.
            unsafe { libc::geteuid() }
        },
        |(uid, _)| uid,
    );
    let owner_name = user_name(owner_uid)
        .filter(|n| !n.is_empty() && !n.contains(['"', '\n', '\r']))
        .ok_or_else(|| failed(base, format!("no usable name for user {owner_uid}")))?;
    fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| failed(&socket_dir, format!("cannot chmod: {e}")))?;
    let meta = fs::symlink_metadata(&socket_dir).map_err(|e| failed(&socket_dir, e.to_string()))?;
    if !meta.is_dir() || meta.uid() != owner_uid || meta.mode() & 0o077 != 0 {
        return Err(failed(&socket_dir, format!("not a folder private to {owner_name}; remove it and try again")));
    }

    let mut created = false;
    if !data_dir.join("PG_VERSION").is_file() {
        if data_dir.exists() {
            // A half-made cluster from an interrupted initdb.
            fs::remove_dir_all(&data_dir).map_err(|e| failed(&data_dir, format!("cannot clear: {e}")))?;
        }
        let out = run(
            "initdb",
            &[
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "--auth-local=peer".as_ref(),
                "--auth-host=reject".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
            ],
        )?;
        if !out.status.success() {
            return Err(failed(&data_dir, format!("initdb failed: {}", last_line(&out))));
        }
        let conf = format!(
            "\n# keyfall private cluster: Unix socket only\nlisten_addresses = ''\nunix_socket_directories = '{}'\nport = {PORT}\n",
            socket_dir.display().to_string().replace('\'', "''")
        );
        let mut file = OpenOptions::new()
            .append(true)
            .open(data_dir.join("postgresql.conf"))
            .map_err(|e| failed(&data_dir, format!("cannot configure: {e}")))?;
        file.write_all(conf.as_bytes()).map_err(|e| failed(&data_dir, format!("cannot configure: {e}")))?;
        created = true;
    }

    // Written every time: this is also how a cluster made by an older
    // keyfall (trust for everyone) is locked down.
    let changed = write_access_files(&data_dir, &owner_name, owner, access)?;

    let status = run("pg_ctl", &["status".as_ref(), "-D".as_ref(), data_dir.as_os_str()])?;
    let mut started = false;
    let mut locked_down = false;
    if status.status.success() && changed && !created {
        // Restart rather than reload: the new rules hold as soon as this
        // returns, and sessions opened under the old ones are dropped.
        let out = run(
            "pg_ctl",
            &[
                "restart".as_ref(),
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-l".as_ref(),
                log_file.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-s".as_ref(),
            ],
        )?;
        if !out.status.success() {
            return Err(failed(&data_dir, format!("pg_ctl restart (to lock it down) failed: {}", last_line(&out))));
        }
        locked_down = true;
    } else if !status.status.success() {
        locked_down = changed && !created;
        let out = run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-l".as_ref(),
                log_file.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-s".as_ref(),
            ],
        )?;
        if !out.status.success() {
            let log_tail = fs::read_to_string(&log_file)
                .ok()
                .and_then(|l| l.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
                .unwrap_or_else(|| last_line(&out));
            return Err(failed(&data_dir, format!("pg_ctl start failed: {log_tail}")));
        }
        started = true;
    }
    drop(lock);
    Ok(PrivateCluster { data_dir, socket_dir, log_file, bin_dir, started, created, locked_down, owner: owner_name })
}

/// Stop the cluster in `base` (tests use it for throwaway clusters).
pub fn stop(cluster: &PrivateCluster) -> Result<(), ClusterError> {
    let mut cmd = Command::new(cluster.bin_dir.join("pg_ctl"));
    cmd.args(["stop", "-m", "fast", "-w", "-s", "-D"]).arg(&cluster.data_dir).env("LC_ALL", "C");
    if running_as_root()
        && let Some((uid, gid)) = unprivileged_user()
    {
        cmd.uid(uid).gid(gid).current_dir(&cluster.socket_dir);
    }
    let out = cmd.output().map_err(|e| failed(&cluster.data_dir, format!("cannot run pg_ctl: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(&cluster.data_dir, format!("pg_ctl stop failed: {}", last_line(&out))))
    }
}

fn last_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string()
}
