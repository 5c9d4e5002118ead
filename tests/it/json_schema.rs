//! Issue 20 point 7: JSON as a stable interface. Every command with
//! `--json` documents its shape in docs/json/<command>.schema.json, and
//! the real output of each, on the demo data, is validated against it.
//!
//! The validator is a small one for the subset of JSON Schema the schemas
//! use (type, const, enum, properties, required, additionalProperties,
//! items, $ref into $defs, anyOf, oneOf); a schema using any other keyword
//! fails the test rather than being half-checked. (The `jsonschema` crate
//! would bring a regex engine, a URI resolver and some thirty crates into
//! every test build for this: see ARCHITECTURE.md.)

use serde_json::Value;

use crate::cli::{Run, keyfall};
use crate::support::TestDb;

/// The schema docs/json/<name>.schema.json.
fn schema(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/json/{name}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where `value` breaks `schema` (`root`: the whole schema, for $ref), as
/// "path: what" lines; empty when it fits.
fn errors(root: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(rules) = schema.as_object() else {
        return vec![format!("{at}: a schema must be an object")];
    };
    for (key, rule) in rules {
        match key.as_str() {
            "$schema" | "$id" | "title" | "description" | "$defs" => {}
            "$ref" => {
                let name = rule.as_str().and_then(|r| r.strip_prefix("#/$defs/")).expect("a $ref into $defs");
                let target = root.get("$defs").and_then(|d| d.get(name)).unwrap_or_else(|| panic!("no $defs {name}"));
                out.extend(errors(root, target, value, at));
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => panic!("{at}: type must be a string or a list"),
                };
                let fits = |t: &str| match t {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    "boolean" => value.is_boolean(),
                    "null" => value.is_null(),
                    other => panic!("{at}: unknown type {other}"),
                };
                if !types.iter().any(|t| fits(t)) {
                    out.push(format!("{at}: {value} is not {}", types.join(" or ")));
                }
            }
            "const" if value != rule => out.push(format!("{at}: {value} is not {rule}")),
            "const" => {}
            "enum" if !rule.as_array().expect("enum is a list").contains(value) => {
                out.push(format!("{at}: {value} is not one of {rule}"));
            }
            "enum" => {}
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().expect("required is a list").iter().filter_map(Value::as_str) {
                        if !object.contains_key(name) {
                            out.push(format!("{at}: {name} is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, sub) in rule.as_object().expect("properties is an object") {
                        if let Some(v) = object.get(name) {
                            out.extend(errors(root, sub, v, &format!("{at}.{name}")));
                        }
                    }
                }
            }
            "additionalProperties" => {
                assert_eq!(rule, &Value::Bool(false), "{at}: only additionalProperties: false is supported");
                let known = schema.get("properties").and_then(Value::as_object);
                if let Some(object) = value.as_object() {
                    for name in object.keys().filter(|n| !known.is_some_and(|k| k.contains_key(*n))) {
                        out.push(format!("{at}: {name} is not expected"));
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        out.extend(errors(root, rule, item, &format!("{at}[{i}]")));
                    }
                }
            }
            "anyOf" | "oneOf" => {
                let fitting =
                    rule.as_array().expect("a list").iter().filter(|s| errors(root, s, value, at).is_empty()).count();
                let fits = if key == "anyOf" { fitting >= 1 } else { fitting == 1 };
                if !fits {
                    out.push(format!("{at}: fits {fitting} of the {key} schemas"));
                }
            }
            other => panic!("{at}: the test's validator does not know {other:?}: add it or do without"),
        }
    }
    out
}

/// Validate one command's output against its schema: a JSON document, or
/// JSON lines (`lines`) each validated alone.
fn holds(name: &str, run: &Run, lines: bool) {
    let schema = schema(name);
    let documents: Vec<Value> = if lines {
        run.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"))).collect()
    } else {
        vec![serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{name}: {e}\n{}{}", run.stdout, run.stderr))]
    };
    assert!(!documents.is_empty(), "{name}: no output\n{}", run.stderr);
    for document in documents {
        let found = errors(&schema, &schema, &document, "$");
        assert!(
            found.is_empty(),
            "{name}: the output does not fit docs/json/{name}.schema.json:\n{}\n{document:#}",
            found.join("\n")
        );
        let versioned = match &document {
            Value::Array(items) => items.iter().all(|i| i.get("format_version") == Some(&Value::from(1))),
            other => other.get("format_version") == Some(&Value::from(1)) || other.get("keyfall_export").is_some(),
        };
        assert!(versioned, "{name}: every object carries its format version");
    }
}

#[test]
fn the_validator_finds_what_breaks_a_schema() {
    let policy = schema("policy");
    let good = serde_json::json!({"format_version": 1, "policy": "per_account", "letter": "B"});
    assert!(errors(&policy, &policy, &good, "$").is_empty());
    let bad = serde_json::json!({"format_version": 2, "policy": "everyone", "letter": 3});
    let found = errors(&policy, &policy, &bad, "$");
    assert_eq!(found.len(), 3, "{found:?}");
    let missing = serde_json::json!({"policy": "per_account"});
    assert!(errors(&policy, &policy, &missing, "$").iter().any(|e| e.contains("letter is missing")));
    let resolve = schema("resolve");
    let nested = serde_json::json!({"format_version": 1, "user": "u", "function": "f", "rules": "r",
        "integration_type": "t", "answered_by": null, "steps": [{"account": "a", "position": "first"}],
        "config": null, "hop": null, "error": null, "warnings": []});
    let found = errors(&resolve, &resolve, &nested, "$");
    assert!(found.iter().any(|e| e.starts_with("$.steps[0].position")), "{found:?}");
    assert!(found.iter().any(|e| e.contains("verdict is missing")), "{found:?}");
}

#[test]
fn every_command_with_json_has_a_schema() {
    use clap::CommandFactory;
    let mut missing = Vec::new();
    let top = keyfall::cli::Cli::command();
    for command in top.get_subcommands() {
        let nested: Vec<&clap::Command> =
            if command.has_subcommands() { command.get_subcommands().collect() } else { vec![command] };
        for c in nested {
            if c.get_arguments().any(|a| a.get_id() == "json") {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json");
                if !dir.join(format!("{}.schema.json", command.get_name())).exists() {
                    missing.push(command.get_name().to_string());
                }
            }
        }
    }
    assert!(missing.is_empty(), "no docs/json/<command>.schema.json for {missing:?}");
}

#[tokio::test]
async fn every_json_output_fits_its_schema() {
    let db = TestDb::demo().await;
    let dev = |args: &[&str]| -> Vec<String> {
        ["--as", "dev@igny8.com"].into_iter().chain(args.iter().copied()).map(str::to_string).collect()
    };
    let run = |args: Vec<String>, stdin: Option<&str>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        keyfall(&db, &args, stdin)
    };
    let one = |args: &[&str]| run(args.iter().map(|a| a.to_string()).collect(), None);
    holds("resolve", &one(&["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--json"]), false);
    // Unresolved, and through the second hop.
    holds("resolve", &one(&["resolve", "--user", "paid2@paid.com", "--function", "generate_images", "--json"]), false);
    holds(
        "resolve-batch",
        &run(
            vec!["resolve".into(), "--batch".into()],
            Some(
                "user,function\npaid2@paid.com,auto_cluster\nnobody@x.y,auto_cluster\ndev@igny8.com,generate_images\n",
            ),
        ),
        true,
    );
    holds(
        "resolve-batch",
        &run(
            vec!["resolve".into(), "--batch".into(), "--at".into(), "now".into()],
            Some("user,function\npaid2@paid.com,auto_cluster\nnobody@x.y,auto_cluster\n"),
        ),
        true,
    );
    holds("can", &one(&["can", "--user", "paid2@paid.com", "--json"]), false);
    holds("report", &one(&["report", "--json"]), false);
    holds("get", &one(&["get", "aws-admin", "openai", "--json"]), false);
    holds("get", &one(&["get", "paid-2", "openai", "--json"]), false);
    holds("lint", &one(&["lint", "--json"]), false);
    holds("chain", &one(&["chain", "show", "--json"]), false);
    holds("policy", &one(&["policy", "show", "--json"]), false);
    holds("operator", &one(&["operator", "list", "--json"]), false);
    holds("export", &one(&["export"]), false);
    holds("set", &run(dev(&["set", "aws-admin", "openai", "model", "gpt-4o", "--dry-run", "--json"]), None), false);
    holds("set", &run(dev(&["set", "aws-admin", "openai", "model", "gpt-4o", "--json"]), None), false);
    holds("audit", &one(&["audit", "--account", "aws-admin", "--json"]), false);
    // The demo's aws-admin key, held since history began, and a key no row held.
    holds("key-history", &one(&["key-history", "--fingerprint", "#35c712e1", "--json"]), false);
    holds("key-history", &one(&["key-history", "--fingerprint", "#00000000", "--json"]), false);
    let dir = tempfile::tempdir().unwrap();
    let expectations = dir.path().join("expect.toml");
    std::fs::write(
        &expectations,
        "[[expect]]\nuser = \"paid2@paid.com\"\nfunction = \"auto_cluster\"\nanswered_by = \"aws-admin\"\n\n\
         [[expect]]\nuser = \"paid2@paid.com\"\nfunction = \"auto_cluster\"\nanswered_by = \"paid-2\"\n",
    )
    .unwrap();
    holds("check", &one(&["check", expectations.to_str().unwrap(), "--json"]), false);
    // A real call, to a port where nothing listens (never to the
    // provider): the failed outcome's shape, without the network.
    let moved = run(dev(&["set", "aws-admin", "openai", "base_url", "http://127.0.0.1:1/v1"]), None);
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    let tested = run(
        dev(&["test-connection", "aws-admin", "openai", "--allow-insecure-endpoint", "--timeout", "5", "--json"]),
        None,
    );
    assert_eq!(tested.code, 1, "a failed call: {}{}", tested.stdout, tested.stderr);
    holds("test-connection", &tested, false);
}
