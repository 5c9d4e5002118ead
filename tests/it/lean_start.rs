//! Issue 19 point 8: a one-shot `resolve` asks the start-up check and its
//! subject in one statement (`Store::check_with_subject`). It answers what
//! `check` and `subject` answer asked apart; the row read ahead serves the
//! one `subject` call that asks the same, once; where keyfall is not in
//! place, it fails as `check` does.

use keyfall::domain::directory::SubjectData;
use keyfall::store::{Store, StoreError};

use crate::cli::keyfall;
use crate::support::TestDb;

/// A subject's data as text, its maps in key order.
fn shown(data: &SubjectData) -> String {
    let mut accounts: Vec<_> = data.snapshot.accounts.iter().map(|a| format!("{a:?}")).collect();
    let mut settings: Vec<_> = data.snapshot.settings.iter().map(|s| format!("{s:?}")).collect();
    accounts.sort();
    settings.sort();
    format!("{:?} {:?} {:?} {:?} {accounts:?} {settings:?}", data.user, data.function, data.policy, data.snapshot.chain)
}

#[tokio::test]
async fn the_check_and_the_subject_in_one_statement_answer_as_asked_apart() {
    let db = TestDb::demo().await;
    let (email, function) = ("paid2@paid.com", "generate_images");

    let apart = Store::connect_single(&db.target).await.unwrap();
    let (mapping, identity) = apart.check(None).await.unwrap();
    let expected = shown(&apart.subject(Some(email), Some(function)).await.unwrap());
    apart.close().await;

    let store = Store::connect_single(&db.target).await.unwrap();
    let (m, id) = store.check_with_subject(None, email, function).await.unwrap();
    assert_eq!((m, id), (mapping, identity));
    // A change after the check: the first subject call is served the row
    // read with the check (one statement for both, nothing re-read), the
    // next reads again and sees it.
    let mut psql = db.raw().await;
    sqlx::query("UPDATE keyfall.policy SET mode = 'hybrid_readonly'").execute(&mut psql).await.unwrap();
    let first = store.subject(Some(email), Some(function)).await.unwrap();
    assert_eq!(shown(&first), expected, "the row read with the check");
    let again = store.subject(Some(email), Some(function)).await.unwrap();
    assert_ne!(again.policy, first.policy, "read again: the change is seen");
    // Another subject is never served the row read ahead.
    let store2 = Store::connect_single(&db.target).await.unwrap();
    store2.check_with_subject(None, email, function).await.unwrap();
    let other = store2.subject(Some(email), Some("auto_cluster")).await.unwrap();
    assert_eq!(other.function.as_ref().map(|f| f.name.as_str()), Some("auto_cluster"));
    store.close().await;
    store2.close().await;

    // The whole process answers as before.
    let run = keyfall(&db, &["resolve", "--user", email, "--function", function, "--json"], None);
    assert!(run.code <= 1, "{}", run.stderr);
    let answer: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(answer["user"], email);
    assert_eq!(answer["integration_type"], "image_generation");
}

#[tokio::test]
async fn where_keyfall_is_not_in_place_the_one_statement_check_fails_as_the_check_does() {
    let db = TestDb::bare().await;
    let store = Store::connect_single(&db.target).await.unwrap();
    let apart = store.check(None).await.unwrap_err();
    let together = store.check_with_subject(None, "paid2@paid.com", "auto_cluster").await.unwrap_err();
    assert!(matches!(apart, StoreError::NotInstalled(_)), "{apart}");
    assert_eq!(together.to_string(), apart.to_string());
    store.close().await;
}

/// The error a one-shot `resolve`'s start-up check gives on `db`, from a
/// fresh session (`None`: it found all well).
async fn start_error(db: &TestDb) -> Option<String> {
    let store = Store::connect_single(&db.target).await.unwrap();
    let together = store.check_with_subject(None, "paid2@paid.com", "auto_cluster").await.err().map(|e| e.to_string());
    store.close().await;
    let store = Store::connect_single(&db.target).await.unwrap();
    let apart = store.check(None).await.err().map(|e| e.to_string());
    store.close().await;
    assert_eq!(together, apart, "the one-statement check and the check say the same");
    together
}

#[tokio::test]
async fn the_lean_check_never_takes_an_unwatched_mapping_as_fitting() {
    // The lean start-up check reads what the DDL watcher recorded. With
    // keyfall's event triggers disabled nothing is recorded: a mapped
    // column renamed then leaves the record saying all is well (and the
    // view still answers: it names columns by number). The check must judge
    // the app's tables itself, then.
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    for trigger in ["keyfall_watch_ddl", "keyfall_watch_drop", "keyfall_ddl_start", "keyfall_ddl_end"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER EVENT TRIGGER {trigger} DISABLE")))
            .execute(&mut psql)
            .await
            .unwrap();
    }
    assert_eq!(start_error(&db).await, None, "unwatched but fitting: all is well");

    sqlx::raw_sql("ALTER TABLE public.integration_settings RENAME COLUMN is_active TO enabled")
        .execute(&mut psql)
        .await
        .unwrap();
    let stale: Option<String> =
        sqlx::query_scalar("SELECT stale FROM keyfall.mapping").fetch_one(&mut psql).await.unwrap();
    assert_eq!(stale, None, "nothing recorded the change");
    let err = start_error(&db).await.expect("the renamed column is found");
    assert!(err.contains("no longer fit") && err.contains("is_active"), "{err}");
    let run = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is_active"), "{}", run.stderr);
}

#[tokio::test]
async fn a_change_the_watcher_records_stops_the_lean_check() {
    // With the watcher in place, a change that no longer fits is recorded
    // (keyfall.mapping.stale) and the lean check reports it.
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::raw_sql("ALTER TABLE public.integration_settings ALTER COLUMN is_active TYPE text USING is_active::text")
        .execute(&mut psql)
        .await
        .unwrap();
    let err = start_error(&db).await.expect("the change is reported");
    assert!(err.contains("no longer fit") && err.contains("not boolean"), "{err}");
    let run = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--json"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not boolean"), "{}", run.stderr);
}

#[tokio::test]
async fn a_lean_start_loads_no_plpgsql_where_nothing_is_masked() {
    // PostgreSQL loads the PL/pgSQL library into a backend as soon as a
    // plan naming a PL/pgSQL function starts, called or not (~0.5-1 ms of
    // server CPU in a fresh session). The owner's one-shot `resolve` —
    // the check and the settings through keyfall's view — names none.
    let db = TestDb::demo().await;
    let store = Store::connect_single(&db.target).await.unwrap();
    store.check_with_subject(None, "paid2@paid.com", "auto_cluster").await.unwrap();
    let data = store.subject(Some("paid2@paid.com"), Some("auto_cluster")).await.unwrap();
    assert!(!data.snapshot.settings.is_empty(), "the settings were read");
    let loaded: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_catalog.pg_settings WHERE name LIKE 'plpgsql.%'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(loaded, 0, "PL/pgSQL was loaded by the start-up statement");
    // A read that masks does load it: the check above can fail.
    sqlx::query("SELECT keyfall.keyfall_mask('{\"apiKey\": \"sk-0123456789abcdef\"}'::jsonb)")
        .execute(store.pool())
        .await
        .unwrap();
    let loaded: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_catalog.pg_settings WHERE name LIKE 'plpgsql.%'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(loaded > 0, "masking runs PL/pgSQL");
    store.close().await;
}
