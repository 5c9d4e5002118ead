//! Which of the app's tables and columns are the accounts, users and
//! settings keyfall reads (DESIGN §5). The mapping belongs to the database:
//! `keyfall attach` installs it there (detected, or from the config file's
//! `[mapping]`, which is only ever an input to attach), and every command
//! uses the one installed in the database it talks to. Installed, a mapping
//! becomes views in the `keyfall` schema under keyfall's names plus the
//! audit triggers on the settings table (`keyfall_install_mapping`), so
//! every query keyfall runs is the same whatever the app calls its tables.
//!
//! An optional column (`version`, `updated_at`, `updated_by`,
//! `created_at`) is a name or `false` (the table has none); left out of a
//! config's `[mapping]`, it is what detection finds, as is a section left
//! out.

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
    #[serde(serialize_with = "column_out", deserialize_with = "column_in")]
    pub version: Option<String>,
    #[serde(serialize_with = "column_out", deserialize_with = "column_in")]
    pub updated_at: Option<String>,
    /// Who wrote last; without one keyfall shows the audit log's last actor.
    #[serde(serialize_with = "column_out", deserialize_with = "column_in")]
    pub updated_by: Option<String>,
    #[serde(serialize_with = "column_out", deserialize_with = "column_in")]
    pub created_at: Option<String>,
}

/// An optional column written out: its name, or `false` for none (TOML
/// has no null; a missing key would read back as "detect").
fn column_out<S: serde::Serializer>(column: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match column {
        Some(name) => s.serialize_str(name),
        None => s.serialize_bool(false),
    }
}

/// An optional column read: a name, or `false` (or null, or "") for none.
fn column_in<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Name(String),
        Flag(bool),
    }
    match Option::<Raw>::deserialize(d)? {
        None | Some(Raw::Flag(false)) => Ok(None),
        Some(Raw::Name(n)) if n.trim().is_empty() => Ok(None),
        Some(Raw::Name(n)) => Ok(Some(n)),
        Some(Raw::Flag(true)) => {
            Err(serde::de::Error::custom("a column is a name, or false when the table has none (true names no column)"))
        }
    }
}

/// `column_in` for a config's `[mapping]`: `None` when the key is not
/// written (detection decides), `Some(None)` for `false`.
fn given_column<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    column_in(d).map(Some)
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
            updated_at: None,
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
                    updated_at: Some("updated_at".into()),
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
        // An absent optional column is no key at all in the document (what
        // keyfall has always installed; the SQL reads only string columns).
        let mut settings_columns = json!(self.settings.columns);
        if let Some(columns) = settings_columns.as_object_mut() {
            columns.retain(|_, v| !v.is_boolean() && !v.is_null());
        }
        json!({
            "accounts": part(&self.accounts.table, json!(self.accounts.columns),
                             Some(("status_values", &self.accounts.status_values))),
            "users": part(&self.users.table, json!(self.users.columns), Some(("role_values", &self.users.role_values))),
            "settings": part(&self.settings.table, settings_columns, None),
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

/// A config file's `[mapping]`: an input to `keyfall attach` only. Every
/// part may be left out (detection finds it); an optional settings column
/// left out is detected, `false` says the table has none.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingInput {
    pub accounts: Option<AccountsMap>,
    pub users: Option<UsersMap>,
    pub settings: Option<SettingsInput>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    pub table: String,
    #[serde(default)]
    pub columns: SettingColumnsInput,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingColumnsInput {
    pub id: String,
    pub account_id: String,
    pub integration_type: String,
    pub config: String,
    pub is_active: String,
    #[serde(deserialize_with = "given_column")]
    pub version: Option<Option<String>>,
    #[serde(deserialize_with = "given_column")]
    pub updated_at: Option<Option<String>>,
    #[serde(deserialize_with = "given_column")]
    pub updated_by: Option<Option<String>>,
    #[serde(deserialize_with = "given_column")]
    pub created_at: Option<Option<String>>,
}

impl Default for SettingColumnsInput {
    fn default() -> Self {
        let d = SettingColumns::default();
        SettingColumnsInput {
            id: d.id,
            account_id: d.account_id,
            integration_type: d.integration_type,
            config: d.config,
            is_active: d.is_active,
            version: None,
            updated_at: None,
            updated_by: None,
            created_at: None,
        }
    }
}

impl From<&Mapping> for MappingInput {
    /// A whole mapping as an input that leaves nothing to detection.
    fn from(m: &Mapping) -> Self {
        let c = &m.settings.columns;
        MappingInput {
            accounts: Some(m.accounts.clone()),
            users: Some(m.users.clone()),
            settings: Some(SettingsInput {
                table: m.settings.table.clone(),
                columns: SettingColumnsInput {
                    id: c.id.clone(),
                    account_id: c.account_id.clone(),
                    integration_type: c.integration_type.clone(),
                    config: c.config.clone(),
                    is_active: c.is_active.clone(),
                    version: Some(c.version.clone()),
                    updated_at: Some(c.updated_at.clone()),
                    updated_by: Some(c.updated_by.clone()),
                    created_at: Some(c.created_at.clone()),
                },
            }),
        }
    }
}

impl MappingInput {
    /// The whole mapping for a database whose tables are `tables`: what the
    /// input says, the rest detected. `settings_table` (`--settings-table`)
    /// picks the settings table when the input names none.
    pub fn resolve(&self, tables: &[TableInfo], settings_table: Option<&str>) -> Result<Mapping, String> {
        let settings_info: Option<&TableInfo> = match &self.settings {
            Some(given) => find(tables, &given.table),
            None => Some(detect_settings(tables, settings_table)?),
        };
        let settings = match &self.settings {
            Some(given) => {
                SettingsMap { table: qualified(&given.table), columns: settings_columns(settings_info, &given.columns) }
            }
            None => {
                let info = settings_info.expect("detected");
                SettingsMap {
                    table: info.qualified(),
                    columns: settings_columns(Some(info), &SettingColumnsInput::default()),
                }
            }
        };
        let accounts_info: Option<&TableInfo> = match &self.accounts {
            Some(given) => find(tables, &given.table),
            None => {
                let info = settings_info.ok_or_else(|| {
                    format!("the settings table {} does not exist: name [mapping.accounts] too", settings.table)
                })?;
                Some(accounts_for(tables, info, &settings.columns.account_id)?)
            }
        };
        let accounts = match &self.accounts {
            Some(given) => AccountsMap { table: qualified(&given.table), ..given.clone() },
            None => {
                let info = accounts_info.expect("detected");
                AccountsMap { table: info.qualified(), columns: account_columns(info), status_values: BTreeMap::new() }
            }
        };
        let users = match &self.users {
            Some(given) => UsersMap { table: qualified(&given.table), ..given.clone() },
            None => {
                let info = accounts_info.ok_or_else(|| {
                    format!("the accounts table {} does not exist: name [mapping.users] too", accounts.table)
                })?;
                users_for(tables, info)?
            }
        };
        Ok(Mapping { accounts, users, settings })
    }
}

fn find<'a>(tables: &'a [TableInfo], table: &str) -> Option<&'a TableInfo> {
    let wanted = qualified(table);
    tables.iter().find(|t| t.qualified() == wanted)
}

/// Find Django-shaped tables: a settings table with `integration_type`, a
/// JSON `config` and `is_active`; its accounts table by the foreign key of
/// `account_id`; the users table by its foreign key to the accounts table.
/// `settings_table` picks one when several fit.
pub fn detect(tables: &[TableInfo], settings_table: Option<&str>) -> Result<Mapping, String> {
    MappingInput::default().resolve(tables, settings_table)
}

fn detect_settings<'a>(tables: &'a [TableInfo], settings_table: Option<&str>) -> Result<&'a TableInfo, String> {
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
    match candidates.as_slice() {
        [] => Err(
            "no settings table found: no table has account_id, integration_type, a JSON config and is_active (name it with --settings-table, or write [mapping.settings] in the config file)"
                .into(),
        ),
        [one] => Ok(*one),
        many => Err(format!(
            "several tables look like integration settings ({}): choose one with --settings-table",
            many.iter().map(|t| t.qualified()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The settings columns: what `given` names, the optional ones it leaves
/// out found in the table (when it exists).
fn settings_columns(info: Option<&TableInfo>, given: &SettingColumnsInput) -> SettingColumns {
    let integer = |t: &TableInfo, c: &str| t.column(c).is_some_and(|ty| matches!(ty, "bigint" | "integer"));
    let text =
        |t: &TableInfo, c: &str| t.column(c).is_some_and(|ty| ty == "text" || ty.starts_with("character varying"));
    let detected = |f: &dyn Fn(&TableInfo) -> Option<String>| info.and_then(f);
    SettingColumns {
        id: given.id.clone(),
        account_id: given.account_id.clone(),
        integration_type: given.integration_type.clone(),
        config: given.config.clone(),
        is_active: given.is_active.clone(),
        version: given
            .version
            .clone()
            .unwrap_or_else(|| detected(&|t| Some("version".to_string()).filter(|c| integer(t, c)))),
        updated_at: given
            .updated_at
            .clone()
            .unwrap_or_else(|| detected(&|t| t.first_of(&["updated_at", "modified_at", "modified"]))),
        updated_by: given
            .updated_by
            .clone()
            .unwrap_or_else(|| detected(&|t| t.first_of(&["updated_by", "modified_by"]).filter(|c| text(t, c)))),
        created_at: given.created_at.clone().unwrap_or_else(|| detected(&|t| t.first_of(&["created_at", "created"]))),
    }
}

fn accounts_for<'a>(tables: &'a [TableInfo], settings: &TableInfo, account_id: &str) -> Result<&'a TableInfo, String> {
    let (acc_schema, acc_table) = settings
        .references(account_id)
        .ok_or_else(|| format!("{}.{account_id} references no table (no foreign key)", settings.qualified()))?;
    tables
        .iter()
        .find(|t| t.schema == acc_schema && t.name == acc_table)
        .ok_or_else(|| format!("the accounts table {acc_schema}.{acc_table} is not readable"))
}

fn account_columns(accounts: &TableInfo) -> AccountColumns {
    AccountColumns {
        id: "id".into(),
        slug: accounts.first_of(&["slug", "name"]).unwrap_or_else(|| "slug".into()),
        name: accounts.first_of(&["name", "display_name", "title", "slug"]).unwrap_or_else(|| "name".into()),
        status: accounts.first_of(&["status", "state"]).unwrap_or_else(|| "status".into()),
    }
}

fn users_for(tables: &[TableInfo], accounts: &TableInfo) -> Result<UsersMap, String> {
    let (acc_schema, acc_table) = (accounts.schema.as_str(), accounts.name.as_str());
    let refers = |t: &TableInfo| t.foreign_keys.iter().any(|(_, s, n)| s == acc_schema && n == acc_table);
    let candidates: Vec<&TableInfo> = tables.iter().filter(|t| t.has("email") && refers(t)).collect();
    let users = match candidates.as_slice() {
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
    Ok(UsersMap {
        table: users.qualified(),
        columns: UserColumns { account_id: user_account, ..UserColumns::default() },
        role_values: BTreeMap::new(),
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
    fn table(schema: &str, name: &str, columns: &[(&str, &str)], fks: &[(&str, &str, &str)]) -> TableInfo {
        TableInfo {
            schema: schema.into(),
            name: name.into(),
            columns: columns.iter().map(|(c, t)| (c.to_string(), t.to_string())).collect(),
            foreign_keys: fks.iter().map(|(c, s, t)| (c.to_string(), s.to_string(), t.to_string())).collect(),
        }
    }

    fn app() -> Vec<TableInfo> {
        vec![
            table("public", "tenant", &[("id", "bigint"), ("slug", "text"), ("name", "text"), ("status", "text")], &[]),
            table(
                "public",
                "member",
                &[
                    ("id", "bigint"),
                    ("email", "text"),
                    ("role", "text"),
                    ("is_superuser", "boolean"),
                    ("is_active", "boolean"),
                    ("tenant_id", "bigint"),
                ],
                &[("tenant_id", "public", "tenant")],
            ),
            table(
                "public",
                "app_settings",
                &[
                    ("id", "bigint"),
                    ("account_id", "bigint"),
                    ("integration_type", "text"),
                    ("config", "jsonb"),
                    ("is_active", "boolean"),
                    ("created_at", "timestamp with time zone"),
                ],
                &[("account_id", "public", "tenant")],
            ),
        ]
    }

    #[derive(Deserialize)]
    struct Input {
        mapping: MappingInput,
    }

    #[test]
    fn a_mapping_without_updated_at_round_trips_through_toml_and_sql() {
        let found = detect(&app(), None).unwrap();
        assert_eq!(found.settings.columns.updated_at, None);
        assert_eq!(found.settings.columns.created_at.as_deref(), Some("created_at"));
        assert_eq!(found.users.columns.account_id, "tenant_id");
        // What keyfall prints for the config reads back as the same mapping.
        let text = found.to_toml();
        assert!(text.contains("updated_at = false"), "{text}");
        let back: Input = toml::from_str(&text).unwrap();
        assert_eq!(back.mapping.resolve(&[], None).unwrap(), found);
        // What the database stores reads back as the same mapping, and
        // names no absent column.
        let sql = found.to_sql();
        assert!(sql["settings"]["columns"].get("updated_at").is_none(), "{sql}");
        assert_eq!(from_sql(&sql), Some(found));
    }

    #[test]
    fn sections_and_columns_left_out_are_detected_and_false_means_none() {
        let text =
            "[mapping.settings]\ntable = \"app_settings\"\ncolumns = { created_at = false, updated_at = \"\" }\n";
        let input: Input = toml::from_str(text).unwrap();
        let m = input.mapping.resolve(&app(), None).unwrap();
        assert_eq!(m.settings_table(), "public.app_settings");
        assert_eq!((m.settings.columns.created_at.clone(), m.settings.columns.updated_at.clone()), (None, None));
        assert_eq!(m.accounts_table(), "public.tenant");
        assert_eq!(m.users_table(), "public.member");
        // An empty [mapping] is detection itself.
        assert_eq!(MappingInput::default().resolve(&app(), None), detect(&app(), None));
        let wrong: Result<Input, _> =
            toml::from_str("[mapping.settings]\ntable = \"s\"\ncolumns = { version = true }\n");
        assert!(wrong.err().unwrap().message().contains("false when the table has none"));
    }
}
