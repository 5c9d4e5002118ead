//! The past (issue 23), read from the audit log: where history begins and
//! its gaps, and the rows one answer depends on as they were at a moment —
//! the present rows and every recorded change after the moment, newest
//! first, which `domain::history::rewind` undoes. Only the rows a question
//! touches are read: the user (by email, then and now), the user's account
//! and the chain's accounts (by slug, then and now), and their settings.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::directory::SubjectData;
use crate::domain::history::{self, Cut, Mark, Moment, Undo, Window, World};
use crate::domain::json::read_config;
use crate::domain::model::{Account, AiFunction, ChainEntry, Policy, Setting, User};
use crate::domain::resolve::Snapshot;

/// One recorded change of a row.
#[derive(Debug, Clone)]
struct Change {
    row_id: Option<i64>,
    account_id: Option<i64>,
    integration_type: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
}

/// The world one question reads, as it was at `cut`.
#[derive(Debug, Clone)]
pub struct Past {
    pub cut: Cut,
    pub window: Window,
    /// The user (when asked), the function, the policy, the chain with its
    /// accounts and their settings and the user's account's, as at `cut`.
    pub data: SubjectData,
    /// Accounts asked for by slug (`can --account`, `get`), as at `cut`.
    pub extra: HashMap<String, Account>,
}

/// The recorded changes of table `$5` after the cut (`$1` the first undone
/// entry, `#N`; else `$2` the time after which changes are undone), newest
/// first, where `$filter` (over `$3` ids and `$4` texts) holds. A literal:
/// every statement is a constant.
macro_rules! changes_sql {
    ($filter:literal) => {
        concat!(
            "SELECT row_id, account_id, integration_type, before::text AS before, after::text AS after
               FROM audit_log
              WHERE table_name = $5 AND action IN ('insert', 'update', 'delete')
                AND (CASE WHEN $1::bigint IS NULL THEN at > $2 ELSE id >= $1 END) AND (",
            $filter,
            ") ORDER BY id DESC"
        )
    };
}

/// Which changes of a table to read.
#[derive(Debug, Clone, Copy)]
enum Which {
    All,
    /// Rows by id (`$3`).
    Rows,
    /// Users whose email was or became `$4[1]` (any case).
    Email,
    /// Accounts by id or by a slug they had or got.
    Accounts,
    /// Settings of these accounts.
    Settings,
}

impl Which {
    fn sql(self) -> &'static str {
        match self {
            Which::All => changes_sql!("true"),
            Which::Rows => changes_sql!("row_id = ANY ($3)"),
            Which::Email => {
                changes_sql!("lower(before ->> 'email') = lower($4[1]) OR lower(after ->> 'email') = lower($4[1])")
            }
            Which::Accounts => {
                changes_sql!("row_id = ANY ($3) OR before ->> 'slug' = ANY ($4) OR after ->> 'slug' = ANY ($4)")
            }
            Which::Settings => changes_sql!("account_id = ANY ($3)"),
        }
    }
}

impl Store {
    /// Where history begins and its gaps.
    pub async fn history_window(&self) -> Result<Window, StoreError> {
        let rows = sqlx::query(
            "SELECT id, keyfall_finite(at) AS at, action, table_name, after::text AS after
               FROM audit_log
              WHERE table_name = 'keyfall' OR action IN ('capture_failed', 'capture_refused', 'truncate')
              ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut marks = Vec::with_capacity(rows.len());
        for r in rows {
            marks.push(Mark {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                action: r.try_get("action")?,
                table: r.try_get("table_name")?,
                after: r.try_get::<Option<String>, _>("after")?.map(|t| read_config(&t)),
            });
        }
        Ok(Window::from_marks(&marks))
    }

    /// The cut a moment names: a time as it is; `#N` just before entry N
    /// (which must exist).
    pub async fn cut(&self, moment: Moment) -> Result<Cut, StoreError> {
        match moment {
            Moment::At(at) => Ok(Cut { at, entry: None }),
            Moment::BeforeEntry(n) => {
                let at: Option<DateTime<Utc>> =
                    sqlx::query_scalar("SELECT keyfall_finite(at) FROM audit_log WHERE id = $1")
                        .bind(n)
                        .fetch_optional(&self.pool)
                        .await?;
                let at = at.ok_or_else(|| StoreError::NotFound(format!("no audit entry #{n} (that you may see)")))?;
                Ok(Cut { at, entry: Some(n) })
            }
        }
    }

    /// The world at `cut` for one question: the user `email` (if given),
    /// `function` (if given), the policy, the chain, the accounts named by
    /// `slugs` too, and the settings of every account involved. Refused
    /// (`NotFound`, with the reason) where history does not cover `cut`.
    pub async fn past(
        &self,
        cut: Cut,
        email: Option<&str>,
        function: Option<&str>,
        slugs: &[String],
    ) -> Result<Past, StoreError> {
        let window = self.history_window().await?;
        window.vouch(&cut).map_err(StoreError::NotFound)?;

        let (chain, policy, functions) = self.small_tables(&cut).await?;
        let function = function
            .and_then(|f| functions.get(f).map(|t| AiFunction { name: f.to_string(), integration_type: t.clone() }));

        // The user, by email as it was then.
        let user = match email {
            Some(email) => self.user_at(&cut, email).await?,
            None => None,
        };

        // The accounts: the user's, the chain's and the ones asked for, by
        // slug as they were then.
        let mut want_slugs: Vec<String> = chain.values().cloned().collect();
        want_slugs.extend(slugs.iter().cloned());
        let want_ids: Vec<i64> = user.as_ref().and_then(|u| u.account_id).into_iter().collect();
        let accounts = self.accounts_at(&cut, &want_ids, &want_slugs).await?;
        let by_slug: HashMap<&str, &Account> = accounts.values().map(|a| (a.slug.as_str(), a)).collect();

        let chain = chain_entries(chain, &by_slug);
        let extra: HashMap<String, Account> =
            slugs.iter().filter_map(|s| by_slug.get(s.as_str()).map(|a| (s.clone(), (*a).clone()))).collect();
        let mut involved: Vec<i64> = chain.iter().filter_map(|e| e.account.as_ref().map(|a| a.id)).collect();
        involved.extend(extra.values().map(|a| a.id));
        involved.extend(user.as_ref().and_then(|u| u.account_id));
        involved.sort_unstable();
        involved.dedup();
        let settings = self.settings_at(&cut, Some(&involved)).await?;

        let mut kept: Vec<Account> = accounts.into_values().filter(|a| involved.contains(&a.id)).collect();
        kept.sort_by_key(|a| a.id);
        let snapshot = Snapshot { rules: self.rules.clone(), ..Snapshot::new(chain, kept, settings) };
        Ok(Past { cut, window, data: SubjectData { user, function, policy, snapshot }, extra })
    }

    /// The chain (position → slug), the policy and the function map at
    /// `cut`: small, read whole.
    pub(crate) async fn small_tables(
        &self,
        cut: &Cut,
    ) -> Result<(HashMap<i64, String>, Policy, HashMap<String, String>), StoreError> {
        let mut chain: HashMap<i64, String> =
            sqlx::query_as::<_, (i32, String)>("SELECT position, account_slug::text FROM fallback_chain")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|(p, s)| (i64::from(p), s))
                .collect();
        let changes = self.changes(cut, "fallback_chain", Which::All, &[], &[]).await?;
        let key = |d: &Value| d.get("position").and_then(Value::as_i64);
        let slug = |d: &Value| d.get("account_slug").and_then(Value::as_str).map(str::to_string);
        history::rewind(
            &mut chain,
            changes.iter().map(|c| Undo {
                remove: c.after.as_ref().and_then(key),
                restore: c.before.as_ref().and_then(|d| Some((key(d)?, slug(d)?))),
            }),
        );

        let mut policy: HashMap<bool, String> =
            sqlx::query_scalar::<_, String>("SELECT mode::text FROM policy LIMIT 1")
                .fetch_optional(&self.pool)
                .await?
                .map(|m| (true, m))
                .into_iter()
                .collect();
        let changes = self.changes(cut, "policy", Which::All, &[], &[]).await?;
        let mode = |d: &Value| d.get("mode").and_then(Value::as_str).map(str::to_string);
        history::rewind(
            &mut policy,
            changes.iter().map(|c| Undo {
                remove: c.after.as_ref().map(|_| true),
                restore: c.before.as_ref().and_then(|d| Some((true, mode(d)?))),
            }),
        );
        let policy = policy.get(&true).and_then(|m| Policy::parse(m)).unwrap_or(Policy::SystemOnly);

        let mut functions: HashMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT name::text, integration_type::text FROM ai_functions")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        let changes = self.changes(cut, "ai_functions", Which::All, &[], &[]).await?;
        let text = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
        history::rewind(
            &mut functions,
            changes.iter().map(|c| Undo {
                remove: c.after.as_ref().and_then(|d| text(d, "name")),
                restore: c.before.as_ref().and_then(|d| Some((text(d, "name")?, text(d, "integration_type")?))),
            }),
        );
        Ok((chain, policy, functions))
    }

    /// The whole world at `cut` but the users: every account and setting,
    /// the chain, the policy, the function map — what `report --at` walks.
    pub async fn world_at(&self, cut: Cut) -> Result<World, StoreError> {
        let window = self.history_window().await?;
        window.vouch(&cut).map_err(StoreError::NotFound)?;
        let (chain, policy, functions) = self.small_tables(&cut).await?;
        let now: Vec<(i64, String, String, String)> =
            sqlx::query_as("SELECT id, slug::text, coalesce(name::text, ''), status::text FROM accounts")
                .fetch_all(&self.pool)
                .await?;
        let mut rows: HashMap<i64, Value> = now
            .into_iter()
            .map(|(id, slug, name, status)| (id, serde_json::json!({"slug": slug, "name": name, "status": status})))
            .collect();
        let changes = self.changes(&cut, "accounts", Which::All, &[], &[]).await?;
        history::rewind(&mut rows, undo_by_row(&changes));
        let mut accounts: Vec<Account> = rows.iter().filter_map(|(id, d)| history::account_from(*id, d)).collect();
        accounts.sort_by_key(|a| a.id);
        let settings = self.settings_at(&cut, None).await?;
        let by_slug: HashMap<&str, &Account> = accounts.iter().map(|a| (a.slug.as_str(), a)).collect();
        let chain = chain_entries(chain, &by_slug);
        let snapshot = Snapshot { rules: self.rules.clone(), ..Snapshot::new(chain, accounts, settings) };
        Ok(World { cut, window, policy, functions, snapshot })
    }

    /// Recorded changes of `table` after `cut`, newest first.
    async fn changes(
        &self,
        cut: &Cut,
        table: &str,
        which: Which,
        ids: &[i64],
        texts: &[String],
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(which.sql())
            .bind(cut.entry)
            .bind(cut.at)
            .bind(ids)
            .bind(texts)
            .bind(table)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(Change {
                row_id: r.try_get("row_id")?,
                account_id: r.try_get("account_id")?,
                integration_type: r.try_get("integration_type")?,
                before: r.try_get::<Option<String>, _>("before")?.map(|t| read_config(&t)),
                after: r.try_get::<Option<String>, _>("after")?.map(|t| read_config(&t)),
            });
        }
        Ok(out)
    }

    async fn user_at(&self, cut: &Cut, email: &str) -> Result<Option<User>, StoreError> {
        let emails = vec![email.to_string()];
        let mut ids: HashSet<i64> =
            sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE email = $1 OR lower(email) = lower($1)")
                .bind(email)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        let named = self.changes(cut, "users", Which::Email, &[], &emails).await?;
        ids.extend(named.iter().filter_map(|c| c.row_id));
        let ids: Vec<i64> = ids.into_iter().collect();
        let now: Vec<(i64, String, String, bool, bool, Option<i64>)> = sqlx::query_as(
            "SELECT id, email::text, role::text, is_superuser::boolean, is_active::boolean, account_id::bigint
               FROM users WHERE id = ANY ($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut rows: HashMap<i64, Value> = now
            .into_iter()
            .map(|(id, email, role, su, active, acc)| {
                let doc = serde_json::json!({"email": email, "role": role, "is_superuser": su,
                                             "is_active": active, "account_id": acc});
                (id, doc)
            })
            .collect();
        let changes = self.changes(cut, "users", Which::Rows, &ids, &[]).await?;
        history::rewind(&mut rows, undo_by_row(&changes));
        let mut users: Vec<User> = rows.iter().filter_map(|(id, d)| history::user_from(*id, d)).collect();
        users.sort_by_key(|u| (u.email != email, u.id));
        Ok(users.into_iter().find(|u| u.email.to_lowercase() == email.to_lowercase()))
    }

    async fn accounts_at(&self, cut: &Cut, ids: &[i64], slugs: &[String]) -> Result<HashMap<i64, Account>, StoreError> {
        let mut candidates: HashSet<i64> =
            sqlx::query_scalar::<_, i64>("SELECT id FROM accounts WHERE id = ANY ($1) OR slug = ANY ($2)")
                .bind(ids)
                .bind(slugs)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        let named = self.changes(cut, "accounts", Which::Accounts, ids, slugs).await?;
        candidates.extend(named.iter().filter_map(|c| c.row_id));
        let candidates: Vec<i64> = candidates.into_iter().collect();
        let now: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, slug::text, coalesce(name::text, ''), status::text FROM accounts WHERE id = ANY ($1)",
        )
        .bind(&candidates)
        .fetch_all(&self.pool)
        .await?;
        let mut rows: HashMap<i64, Value> = now
            .into_iter()
            .map(|(id, slug, name, status)| (id, serde_json::json!({"slug": slug, "name": name, "status": status})))
            .collect();
        let changes = self.changes(cut, "accounts", Which::Rows, &candidates, &[]).await?;
        history::rewind(&mut rows, undo_by_row(&changes));
        Ok(rows
            .iter()
            .filter_map(|(id, d)| history::account_from(*id, d))
            .filter(|a| ids.contains(&a.id) || slugs.contains(&a.slug))
            .map(|a| (a.id, a))
            .collect())
    }

    /// The settings of these accounts (`None`: of every account) at `cut`.
    async fn settings_at(&self, cut: &Cut, account_ids: Option<&[i64]>) -> Result<Vec<Setting>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.account_id::bigint AS account_id, s.integration_type::text AS integration_type,
                    s.config::text AS config_text, s.is_active::boolean AS is_active, s.version,
                    CASE WHEN isfinite(s.updated_at) THEN s.updated_at ELSE keyfall_audited_at(s.id) END AS updated_at,
                    s.updated_by::text AS updated_by, s.withheld_verdict, s.withheld_provider::text AS withheld_provider,
                    (SELECT keyfall_version_is_token()) AS version_token
               FROM integration_settings s WHERE $1::bigint[] IS NULL OR s.account_id = ANY ($1)",
        )
        .bind(account_ids)
        .fetch_all(&self.pool)
        .await?;
        let mut now: HashMap<i64, Setting> = HashMap::with_capacity(rows.len());
        for r in rows {
            let setting = super::queries::setting_from_row(&r)?;
            now.insert(setting.id, setting);
        }
        let changes = match account_ids {
            Some(ids) => self.changes(cut, "integration_settings", Which::Settings, ids, &[]).await?,
            None => self.changes(cut, "integration_settings", Which::All, &[], &[]).await?,
        };
        let mut undo = Vec::with_capacity(changes.len());
        for c in &changes {
            let Some(id) = c.row_id else { continue };
            let restore = match (&c.before, c.account_id, &c.integration_type) {
                (Some(doc), Some(account), Some(kind)) => {
                    let s = history::setting_from(id, account, kind, doc).map_err(|why| {
                        StoreError::NotFound(format!("keyfall does not know the world at {}: {why}", cut.label()))
                    })?;
                    Some((id, s))
                }
                _ => None,
            };
            undo.push(Undo { remove: Some(id), restore });
        }
        history::rewind(&mut now, undo);
        let mut out: Vec<Setting> = now.into_values().collect();
        out.sort_by_key(|s| s.id);
        Ok(out)
    }
}

/// The chain (position → slug) in position order, each entry with its
/// account as `by_slug` has it (none for a slug naming no account).
fn chain_entries(chain: HashMap<i64, String>, by_slug: &HashMap<&str, &Account>) -> Vec<ChainEntry> {
    let mut entries: Vec<(i64, String)> = chain.into_iter().collect();
    entries.sort();
    entries
        .into_iter()
        .map(|(position, slug)| ChainEntry {
            position: position as i32,
            account: by_slug.get(slug.as_str()).map(|a| (*a).clone()),
            slug,
        })
        .collect()
}

/// Undo steps for rows keyed by their id (users, accounts).
fn undo_by_row(changes: &[Change]) -> Vec<Undo<i64, Value>> {
    changes
        .iter()
        .filter_map(|c| {
            let id = c.row_id?;
            Some(Undo { remove: Some(id), restore: c.before.clone().map(|d| (id, d)) })
        })
        .collect()
}
