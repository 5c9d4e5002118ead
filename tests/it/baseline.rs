//! keyfall's migrations from the first release on: append-only, and each
//! function's text in a file. Released files (`migrations/RELEASED`) never
//! change; no migration edits a function's source (replace() on
//! pg_get_functiondef); no file defines a function twice. A database of a
//! pre-release keyfall (its migrations 1–15 recorded, replaced by 0.1.0's
//! baseline) is told in one line what to do, and can be purged.

use std::path::PathBuf;

use sha2::{Digest, Sha384};

use crate::cli::keyfall;
use crate::support::TestDb;

fn migrations_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

/// Every migration file: (version, file name, text), by version.
fn migration_files() -> Vec<(i64, String, String)> {
    let mut files: Vec<(i64, String, String)> = std::fs::read_dir(migrations_dir())
        .expect("migrations/")
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| {
            let version = name.split('_').next().and_then(|v| v.parse().ok()).expect("a migration's version");
            let text = std::fs::read_to_string(migrations_dir().join(&name)).expect("read a migration");
            (version, name, text)
        })
        .collect();
    files.sort();
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `migrations/RELEASED`: (version, sha384, file name) of every released file.
fn released() -> Vec<(i64, String, String)> {
    std::fs::read_to_string(migrations_dir().join("RELEASED"))
        .expect("migrations/RELEASED")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 3, "RELEASED: `version sha384 file [release]`, not {l:?}");
            (f[0].parse().expect("RELEASED: a version"), f[1].to_lowercase(), f[2].to_string())
        })
        .collect()
}

/// The top-level statements of a SQL script, comments left out: split at
/// `;` outside quotes, quoted identifiers, dollar quotes and comments.
fn statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let (mut out, mut cur, mut i) = (Vec::new(), String::new(), 0);
    let tag_at = |i: usize| -> Option<usize> {
        // `$tag$` or `$$` (not `$1`): the length of the tag with both `$`.
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        (j < b.len() && b[j] == b'$' && !b.get(i + 1).is_some_and(u8::is_ascii_digit)).then_some(j + 1 - i)
    };
    while i < b.len() {
        let rest = &sql[i..];
        if rest.starts_with("--") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if b[i] == b'\'' || b[i] == b'"' {
            let q = b[i];
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == q && b.get(j + 1) == Some(&q) {
                    j += 2;
                } else if b[j] == q {
                    break;
                } else {
                    j += 1;
                }
            }
            let end = (j + 1).min(b.len());
            cur.push_str(&sql[i..end]);
            i = end;
        } else if b[i] == b'$'
            && let Some(n) = tag_at(i)
        {
            let tag = &sql[i..i + n];
            let end = sql[i + n..].find(tag).map_or(b.len(), |e| i + n + e + n);
            cur.push_str(&sql[i..end]);
            i = end;
        } else if b[i] == b';' {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            cur.clear();
            i += 1;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            cur.push(c);
            i += c.len_utf8();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The statements of `sql` that rewrite a function from its own source
/// text (pg_get_functiondef or prosrc, edited by replace() and the like,
/// or run again with EXECUTE): a pattern that stops matching silently does
/// nothing, and the code that runs is in no file.
fn patches(sql: &str) -> Vec<String> {
    statements(sql)
        .into_iter()
        .filter(|s| {
            let s = s.to_lowercase();
            (s.contains("pg_get_functiondef") || s.contains("prosrc"))
                && ["replace(", "overlay(", "execute"].iter().any(|edit| s.contains(edit))
        })
        .map(|s| s.chars().take(120).collect())
        .collect()
}

/// The functions `sql` creates at its top level: (schema-qualified name in
/// lower case, whether CREATE OR REPLACE).
fn created_functions(sql: &str) -> Vec<(String, bool)> {
    statements(sql)
        .into_iter()
        .filter_map(|s| {
            let words: Vec<String> = s.split_whitespace().take(6).map(str::to_lowercase).collect();
            let (replace, name) = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["create", "function", name, ..] => (false, name.to_string()),
                ["create", "or", "replace", "function", name, ..] => (true, name.to_string()),
                _ => return None,
            };
            let name = name.split('(').next().unwrap_or_default().replace('"', "");
            Some((name, replace))
        })
        .collect()
}

/// What is wrong with these migration files' function definitions: one
/// defined twice in a file, or created again later without OR REPLACE.
fn definition_problems(files: &[(i64, String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for (_, file, sql) in files {
        let mut here: Vec<String> = Vec::new();
        for (name, replace) in created_functions(sql) {
            if here.contains(&name) {
                problems.push(format!("{file} defines {name} twice: one definition, in its final form"));
            } else if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name)
                && !replace
            {
                problems
                    .push(format!("{file} creates {name}, defined in {first} already: CREATE OR REPLACE it in full"));
            }
            here.push(name.clone());
            seen.push((name, file.clone()));
        }
    }
    problems
}

#[test]
fn released_migrations_never_change() {
    let released = released();
    assert!(!released.is_empty(), "RELEASED lists the released migrations");
    let files = migration_files();
    let migrator = keyfall::store::migrator();
    for (version, sha, file) in &released {
        let text = std::fs::read(migrations_dir().join(file))
            .unwrap_or_else(|_| panic!("migrations/{file} was released and is gone: released migrations stay"));
        assert_eq!(
            &hex(&Sha384::digest(&text)),
            sha,
            "migrations/{file} changed after its release: released migrations are append-only; put the change in a new migration"
        );
        let embedded = migrator.iter().find(|m| m.version == *version).expect("a released migration in the binary");
        assert_eq!(&hex(&embedded.checksum), sha, "the binary's migration {version} is the released file");
    }
    let last = released.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
    for (version, file, _) in files.iter().filter(|(v, _, _)| *v <= last) {
        assert!(
            released.iter().any(|(v, _, f)| v == version && f == file),
            "migrations/{file} is numbered among the released ones ({last} and before) but is not in RELEASED: a new migration goes after them"
        );
    }
}

#[test]
fn no_migration_patches_a_functions_source() {
    // The check finds what migrations 0004-0006 of the pre-release did.
    let sample = "-- rewrite it where it writes that CASE\nDO $$\nDECLARE\n    def text := pg_get_functiondef('keyfall.keyfall_install_mapping(jsonb)'::regprocedure);\n    fixed text := replace(def, 'a;', 'b;');\nBEGIN\n    IF fixed <> def THEN\n        EXECUTE fixed;\n    END IF;\nEND\n$$;\nSELECT 1;";
    assert_eq!(patches(sample).len(), 1, "{:?}", statements(sample));
    assert!(patches("SELECT replace('a', 'b', 'c'); -- pg_get_functiondef in a comment\nSELECT 1;").is_empty());
    for (_, file, sql) in migration_files() {
        let found = patches(&sql);
        assert!(
            found.is_empty(),
            "migrations/{file} edits a function's source text (write the function in full, CREATE OR REPLACE): {found:?}"
        );
    }
}

#[test]
fn each_function_is_defined_once_in_a_file() {
    // The check finds a second definition in one file, and a plain CREATE
    // of a function an earlier file made.
    let twice = [(1, "0001_a.sql".to_string(), "CREATE FUNCTION keyfall.f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\nCREATE OR REPLACE FUNCTION keyfall.f() RETURNS int LANGUAGE sql AS $f$ SELECT 2 $f$;".to_string())];
    assert_eq!(definition_problems(&twice).len(), 1);
    let again = [
        (
            1,
            "0001_a.sql".to_string(),
            "CREATE FUNCTION keyfall.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;".to_string(),
        ),
        (
            2,
            "0002_b.sql".to_string(),
            "CREATE FUNCTION keyfall.f() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;".to_string(),
        ),
        (
            3,
            "0003_c.sql".to_string(),
            "CREATE OR REPLACE FUNCTION keyfall.f() RETURNS int LANGUAGE sql AS $$ SELECT 3 $$;".to_string(),
        ),
    ];
    assert_eq!(definition_problems(&again).len(), 1, "{:?}", definition_problems(&again));

    let files = migration_files();
    assert_eq!(definition_problems(&files), Vec::<String>::new());
    // The baseline defines keyfall's functions, the code generator among them.
    let baseline = created_functions(&files[0].2);
    assert!(baseline.len() > 70, "{} functions in {}", baseline.len(), files[0].1);
    assert!(baseline.iter().any(|(n, _)| n == "keyfall.keyfall_install_mapping"));
}

#[tokio::test]
async fn a_pre_release_schema_says_what_to_do_and_can_be_purged() {
    let db = TestDb::new().await;
    let mut conn = db.raw().await;
    // What a pre-release keyfall recorded: its migrations 1-15, none of
    // them this keyfall's (whatever migrations this keyfall has after its
    // baseline).
    sqlx::raw_sql(
        "DELETE FROM keyfall._sqlx_migrations;
         INSERT INTO keyfall._sqlx_migrations (version, description, success, checksum, execution_time)
         SELECT v, 'pre-release', true, sha384(('pre-release migration ' || v)::bytea), 0 FROM generate_series(1, 15) v;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(db.store.installed().await.unwrap(), keyfall::store::Installed::PreRelease { last: 15 });

    for args in [vec!["report"], vec!["migrate"], vec!["attach", "--yes"], vec!["detach", "--yes"]] {
        let run = keyfall(&db, &args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{args:?}: one line: {line}");
        assert!(
            line.contains("pre-release keyfall schema (migrations 1–15")
                && line.contains("`keyfall detach --purge`")
                && line.contains("then `keyfall attach`"),
            "{args:?}: {line}"
        );
    }
    // Nothing was changed by them.
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keyfall._sqlx_migrations").fetch_one(&mut conn).await.unwrap();
    assert_eq!(recorded, 15);

    let run = keyfall(&db, &["detach", "--purge", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let schema: bool =
        sqlx::query_scalar("SELECT to_regnamespace('keyfall') IS NOT NULL").fetch_one(&mut conn).await.unwrap();
    assert!(!schema, "--purge removes the pre-release schema");
    db.store.migrate().await.unwrap();
    assert_eq!(db.store.installed().await.unwrap(), keyfall::store::Installed::Current { mapping: None });
}
