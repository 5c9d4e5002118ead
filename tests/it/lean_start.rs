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
