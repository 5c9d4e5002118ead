//! The registry and the SQL agree (STYLE "one registry, derived
//! everywhere"): every case here is built from `domain::registry` — each
//! type, each of its fields with a wrong-typed value, a provider without its
//! key, a consumer without its provider or naming each provider type — and
//! `keyfall_row_verdict` in the migrated database must judge it as
//! `registry::judge` does. Adding a type or a field to the registry without
//! the migration that teaches the SQL fails here, naming the case.

use keyfall::domain::registry::{self, FieldKind, Kind, TYPES};
use serde_json::{Map, Value, json};

use crate::support::TestDb;

/// A value of the right type for a field, the app would accept.
fn good(kind: FieldKind) -> Value {
    match kind {
        FieldKind::Secret => json!("sk-test-0123456789abcdef"),
        FieldKind::Text => json!("some-text"),
        FieldKind::ProviderRef => json!(registry::provider_names().next().expect("a provider type")),
        FieldKind::Number { min, max } => json!((min + max) / 2.0),
        FieldKind::Integer { min } => json!(min + 1),
    }
}

/// A value of the wrong type (or out of range) for a field.
fn bad(kind: FieldKind) -> Value {
    match kind {
        FieldKind::Secret | FieldKind::Text => json!(42),
        FieldKind::ProviderRef => json!("no-such-provider"),
        FieldKind::Number { max, .. } => json!(max + 1.0),
        FieldKind::Integer { min } => json!(min - 1),
    }
}

/// Every case the registry implies: (type, config, active).
pub(crate) fn cases() -> Vec<(String, Value, bool)> {
    let mut out = Vec::new();
    for spec in &TYPES {
        let valid: Map<String, Value> = spec.fields.iter().map(|f| (f.name.to_string(), good(f.kind))).collect();
        let ty = spec.name.to_string();
        out.push((ty.clone(), Value::Object(valid.clone()), true));
        out.push((ty.clone(), Value::Object(valid.clone()), false));
        out.push((ty.clone(), json!("not an object"), true));
        for field in spec.fields {
            let mut without = valid.clone();
            without.remove(field.name);
            out.push((ty.clone(), Value::Object(without), true));
            let mut wrong = valid.clone();
            wrong.insert(field.name.to_string(), bad(field.kind));
            out.push((ty.clone(), Value::Object(wrong), true));
        }
        match spec.kind {
            Kind::Provider => {
                let mut blank = valid.clone();
                blank.insert("apiKey".into(), json!("  "));
                out.push((ty.clone(), Value::Object(blank), true));
            }
            Kind::Consumer => {
                // Each provider type is a provider; each consumer is not.
                for other in &TYPES {
                    let mut named = valid.clone();
                    named.insert("provider".into(), json!(other.name));
                    out.push((ty.clone(), Value::Object(named), true));
                }
            }
        }
    }
    // A type the registry does not know: its rows are taken as they are.
    out.push(("not_in_the_registry".into(), json!({}), true));
    out
}

#[tokio::test]
async fn the_sql_verdict_follows_the_registry_for_every_type_and_field() {
    let db = TestDb::new().await;
    let mut conn = db.raw().await;
    let cases = cases();
    assert!(cases.len() > 3 * TYPES.len(), "the cases come from the registry");
    let mut wrong = Vec::new();
    for (ty, config, active) in &cases {
        let sql: String = sqlx::query_scalar("SELECT keyfall.keyfall_row_verdict($1, $2, $3)")
            .bind(ty)
            .bind(config)
            .bind(active)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let pure = registry::judge(ty, config, *active).verdict.as_str();
        if sql != pure {
            wrong.push(format!("{ty} {config} active={active}: registry {pure}, SQL {sql}"));
        }
    }
    assert!(wrong.is_empty(), "the SQL (migrations) and the registry disagree:\n{}", wrong.join("\n"));
}
