//! Which of the app's tables and columns are the accounts, users and
//! settings keyfall reads (DESIGN §5). The config file names them
//! (`[mapping]`); the default is keyfall's own demo tables. Installed, a
//! mapping becomes views in the `keyfall` schema under keyfall's names plus
//! the audit triggers on the settings table (migration 0001,
//! `keyfall_install_mapping`), so every query keyfall runs is the same
//! whatever the app calls its tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub accounts: AccountsMap,
    pub users: UsersMap,
    pub settings: SettingsMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsMap {
    /// `table` or `schema.table` (schema `public` when not given).
    pub table: String,
    #[serde(default)]
    pub columns: AccountColumns,
    /// keyfall status → the app's values for it, e.g. `suspended = ["blocked"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_values: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountColumns {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub status: String,
}

impl Default for AccountColumns {
    fn default() -> Self {
        AccountColumns { id: "id".into(), slug: "slug".into(), name: "name".into(), status: "status".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersMap {
    pub table: String,
    #[serde(default)]
    pub columns: UserColumns,
    /// keyfall role → the app's values for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_values: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserColumns {
    pub id: String,
    pub email: String,
    pub role: String,
    pub is_superuser: String,
    pub is_active: String,
    pub account_id: String,
}

impl Default for UserColumns {
    fn default() -> Self {
        UserColumns {
            id: "id".into(),
            email: "email".into(),
            role: "role".into(),
            is_superuser: "is_superuser".into(),
            is_active: "is_active".into(),
            account_id: "account_id".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsMap {
    pub table: String,
    #[serde(default)]
    pub columns: SettingColumns,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingColumns {
    pub id: String,
    pub account_id: String,
    pub integration_type: String,
    pub config: String,
    pub is_active: String,
    /// A column the app increments on every write; without one keyfall's
    /// optimistic lock is the row's `xmin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Who wrote last; without one keyfall shows the audit log's last actor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl Default for SettingColumns {
    fn default() -> Self {
        SettingColumns {
            id: "id".into(),
            account_id: "account_id".into(),
            integration_type: "integration_type".into(),
            config: "config".into(),
            is_active: "is_active".into(),
            version: None,
            updated_at: Some("updated_at".into()),
            updated_by: None,
            created_at: None,
        }
    }
}

impl Mapping {
    /// keyfall's own demo tables (`assets/demo_schema.sql`).
    pub fn demo() -> Mapping {
        Mapping {
            accounts: AccountsMap {
                table: "public.accounts".into(),
                columns: AccountColumns::default(),
                status_values: BTreeMap::new(),
            },
            users: UsersMap {
                table: "public.users".into(),
                columns: UserColumns::default(),
                role_values: BTreeMap::new(),
            },
            settings: SettingsMap {
                table: "public.integration_settings".into(),
                columns: SettingColumns {
                    version: Some("version".into()),
                    updated_by: Some("updated_by".into()),
                    ..SettingColumns::default()
                },
            },
        }
    }

    /// Whether these are keyfall's demo tables.
    pub fn is_demo(&self) -> bool {
        self.normalized() == Mapping::demo().normalized()
    }

    /// The document `keyfall_install_mapping` takes: tables split into
    /// schema and name, every column role explicit.
    pub fn to_sql(&self) -> Value {
        let split = |t: &str| -> (String, String) {
            match t.split_once('.') {
                Some((schema, table)) => (schema.to_string(), table.to_string()),
                None => ("public".to_string(), t.to_string()),
            }
        };
        let part = |table: &str, columns: Value, values: Option<(&str, &BTreeMap<String, Vec<String>>)>| {
            let (schema, table) = split(table);
            let mut v = json!({ "schema": schema, "table": table, "columns": columns });
            if let Some((key, map)) = values {
                v[key] = json!(map);
            }
            v
        };
        json!({
            "accounts": part(&self.accounts.table, json!(self.accounts.columns),
                             Some(("status_values", &self.accounts.status_values))),
            "users": part(&self.users.table, json!(self.users.columns), Some(("role_values", &self.users.role_values))),
            "settings": part(&self.settings.table, json!(self.settings.columns), None),
        })
    }

    /// The same mapping with `public.` spelled out, for comparing.
    pub fn normalized(&self) -> Value {
        self.to_sql()
    }

    /// The mapping as a `[mapping]` section of the config file.
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Wrapper<'a> {
            mapping: &'a Mapping,
        }
        toml::to_string(&Wrapper { mapping: self }).unwrap_or_default()
    }

    /// The settings table as `schema.table`.
    pub fn settings_table(&self) -> String {
        qualified(&self.settings.table)
    }

    pub fn accounts_table(&self) -> String {
        qualified(&self.accounts.table)
    }

    pub fn users_table(&self) -> String {
        qualified(&self.users.table)
    }
}

fn qualified(t: &str) -> String {
    if t.contains('.') { t.to_string() } else { format!("public.{t}") }
}

/// A mapping as stored in `keyfall.mapping` (the document given to
/// `keyfall_install_mapping`), read back into the config's shape.
pub fn from_sql(doc: &Value) -> Option<Mapping> {
    let table = |part: &str| {
        let p = doc.get(part)?;
        Some(format!("{}.{}", p.get("schema")?.as_str()?, p.get("table")?.as_str()?))
    };
    let columns = |part: &str| doc.get(part).and_then(|p| p.get("columns")).cloned().unwrap_or(json!({}));
    let values = |part: &str, key: &str| {
        doc.get(part).and_then(|p| p.get(key)).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
    };
    Some(Mapping {
        accounts: AccountsMap {
            table: table("accounts")?,
            columns: serde_json::from_value(columns("accounts")).ok()?,
            status_values: values("accounts", "status_values"),
        },
        users: UsersMap {
            table: table("users")?,
            columns: serde_json::from_value(columns("users")).ok()?,
            role_values: values("users", "role_values"),
        },
        settings: SettingsMap { table: table("settings")?, columns: serde_json::from_value(columns("settings")).ok()? },
    })
}

/// One table of the database, as `attach` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    /// (column, type as format_type prints it)
    pub columns: Vec<(String, String)>,
    /// (column, referenced schema, referenced table)
    pub foreign_keys: Vec<(String, String, String)>,
}

impl TableInfo {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn column(&self, name: &str) -> Option<&str> {
        self.columns.iter().find(|(c, _)| c == name).map(|(_, t)| t.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.column(name).is_some()
    }

    fn first_of(&self, names: &[&str]) -> Option<String> {
        names.iter().find(|n| self.has(n)).map(|n| n.to_string())
    }

    fn references(&self, column: &str) -> Option<(&str, &str)> {
        self.foreign_keys.iter().find(|(c, _, _)| c == column).map(|(_, s, t)| (s.as_str(), t.as_str()))
    }
}

/// Find Django-shaped tables: a settings table with `integration_type`, a
/// JSON `config` and `is_active`; its accounts table by the foreign key of
/// `account_id`; the users table by its foreign key to the accounts table.
/// `settings_table` picks one when several fit.
pub fn detect(tables: &[TableInfo], settings_table: Option<&str>) -> Result<Mapping, String> {
    let mut candidates: Vec<&TableInfo> = tables
        .iter()
        .filter(|t| {
            t.has("integration_type")
                && t.column("config").is_some_and(|ty| ty == "jsonb" || ty == "json")
                && t.has("is_active")
                && t.has("account_id")
        })
        .collect();
    if let Some(wanted) = settings_table {
        let wanted = qualified(wanted);
        candidates.retain(|t| t.qualified() == wanted);
        if candidates.is_empty() {
            return Err(format!(
                "{wanted} is not a settings table (it needs account_id, integration_type, a JSON config and is_active)"
            ));
        }
    }
    let settings = match candidates.as_slice() {
        [] => {
            return Err(
                "no settings table found: no table has account_id, integration_type, a JSON config and is_active (name it with --settings-table, or write [mapping] in the config file)"
                    .into(),
            );
        }
        [one] => *one,
        many => {
            return Err(format!(
                "several tables look like integration settings ({}): choose one with --settings-table",
                many.iter().map(|t| t.qualified()).collect::<Vec<_>>().join(", ")
            ));
        }
    };
    let (acc_schema, acc_table) = settings
        .references("account_id")
        .ok_or_else(|| format!("{}.account_id references no table (no foreign key)", settings.qualified()))?;
    let accounts = tables
        .iter()
        .find(|t| t.schema == acc_schema && t.name == acc_table)
        .ok_or_else(|| format!("the accounts table {acc_schema}.{acc_table} is not readable"))?;
    let users_candidates: Vec<&TableInfo> = tables
        .iter()
        .filter(|t| t.has("email") && t.foreign_keys.iter().any(|(_, s, n)| s == acc_schema && n == acc_table))
        .collect();
    let users = match users_candidates.as_slice() {
        [] => {
            return Err(format!(
                "no users table found: no table with an email column references {acc_schema}.{acc_table}"
            ));
        }
        [one] => *one,
        many => many.iter().find(|t| t.has("role") && t.has("is_superuser")).copied().ok_or_else(|| {
            format!(
                "several tables look like users ({}): write [mapping.users] in the config file",
                many.iter().map(|t| t.qualified()).collect::<Vec<_>>().join(", ")
            )
        })?,
    };
    let user_account = users
        .foreign_keys
        .iter()
        .find(|(_, s, n)| s == acc_schema && n == acc_table)
        .map(|(c, _, _)| c.clone())
        .unwrap_or_else(|| "account_id".into());
    let integer = |t: &TableInfo, c: &str| t.column(c).is_some_and(|ty| matches!(ty, "bigint" | "integer"));
    Ok(Mapping {
        accounts: AccountsMap {
            table: accounts.qualified(),
            columns: AccountColumns {
                id: "id".into(),
                slug: accounts.first_of(&["slug", "name"]).unwrap_or_else(|| "slug".into()),
                name: accounts.first_of(&["name", "display_name", "title", "slug"]).unwrap_or_else(|| "name".into()),
                status: accounts.first_of(&["status", "state"]).unwrap_or_else(|| "status".into()),
            },
            status_values: BTreeMap::new(),
        },
        users: UsersMap {
            table: users.qualified(),
            columns: UserColumns { account_id: user_account, ..UserColumns::default() },
            role_values: BTreeMap::new(),
        },
        settings: SettingsMap {
            table: settings.qualified(),
            columns: SettingColumns {
                version: Some("version".to_string()).filter(|c| integer(settings, c)),
                updated_at: settings.first_of(&["updated_at", "modified_at", "modified"]),
                updated_by: settings
                    .first_of(&["updated_by", "modified_by"])
                    .filter(|c| settings.column(c).is_some_and(|t| t == "text" || t.starts_with("character varying"))),
                created_at: settings.first_of(&["created_at", "created"]),
                ..SettingColumns::default()
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_round_trips_through_sql_and_toml() {
        let demo = Mapping::demo();
        assert_eq!(from_sql(&demo.to_sql()), Some(demo.clone()));
        assert!(demo.is_demo());
        let text = demo.to_toml();
        #[derive(Deserialize)]
        struct W {
            mapping: Mapping,
        }
        let back: W = toml::from_str(&text).unwrap();
        assert_eq!(back.mapping, demo);
    }
}
