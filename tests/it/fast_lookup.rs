//! Issue 19 point 8: every check the database makes for a write finds the
//! operator's app user by email in any case. On tables without an index on
//! lower(email) (Django's) that was a scan of every user per check;
//! `keyfall_user_by_email` (migration 0014) walks the app's own index on
//! email instead. It must answer exactly as the scan: the one user whose
//! email equals the asked one in any case, nobody when two differ only in
//! case — whatever index the app has, non-ASCII emails included.

use crate::support::TestDb;

/// Users added to the demo's: case twins (ASCII and not), a unique mixed
/// case, an email that is a prefix of another, a Kelvin sign (lower() makes
/// it a `k`), LIKE's special characters.
const EMAILS: &[&str] = &[
    "Walk@Example.com",
    "walk@example.com",
    "Solo@Example.com",
    "solo@example.co",
    "josé@example.com",
    "JOSÉ@example.com",
    "zoë@example.com",
    "\u{212A}elvin@example.com",
    "a_b%c@example.com",
    "Ünïcödé@EXAMPLE.com",
];

const PROBES: &[&str] = &[
    "walk@example.com",
    "WALK@EXAMPLE.COM",
    "solo@example.com",
    "SOLO@example.COM",
    "solo@example.co",
    "solo@example.c",
    "solo@example.comm",
    "José@Example.com",
    "zoë@example.com",
    "ZOË@EXAMPLE.COM",
    "zoe@example.com",
    "kelvin@example.com",
    "KELVIN@EXAMPLE.COM",
    "A_B%C@example.com",
    "a_b_c@example.com",
    "ünïcödé@example.com",
    "ÜNÏCÖDÉ@EXAMPLE.COM",
    "dev@igny8.com",
    "DEV@IGNY8.COM",
    "paid2@paid.com",
    "nobody@example.com",
    "x",
];

#[tokio::test]
async fn the_any_case_user_lookup_answers_as_a_scan_whatever_index_the_app_has() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    // The demo's users table made like Django's: no index on lower(email)
    // (and no unique any-case rule), only indexes on email.
    sqlx::raw_sql(
        "DROP INDEX public.users_email_ci; DROP INDEX public.users_email_prefix; DROP INDEX public.users_email",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for email in EMAILS {
        sqlx::query("INSERT INTO public.users (email, role) VALUES ($1, 'viewer')")
            .bind(email)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for (index, walk) in [
        // Django's `_like` index: the walk in byte order.
        ("CREATE INDEX users_email_probe ON public.users (email text_pattern_ops)", Some("pattern")),
        // A btree in the C collation: the walk with the plain operators.
        (r#"CREATE INDEX users_email_probe ON public.users (email COLLATE "C")"#, Some("c")),
        // No index on email at all: a plain query (a scan).
        ("SELECT 1", None),
    ] {
        sqlx::raw_sql("DROP INDEX IF EXISTS public.users_email_probe").execute(&mut conn).await.unwrap();
        sqlx::raw_sql(index).execute(&mut conn).await.unwrap();
        let chosen: Option<String> =
            sqlx::query_scalar("SELECT keyfall.keyfall_email_walk()").fetch_one(&mut conn).await.unwrap();
        if walk.is_some() {
            assert_eq!(chosen.as_deref(), walk, "{index}");
        }
        let mut probes: Vec<String> = PROBES.iter().map(|p| p.to_string()).collect();
        probes.extend(EMAILS.iter().flat_map(|e| [e.to_string(), e.to_uppercase(), e.to_lowercase()]));
        for probe in &probes {
            let (walked, scanned): (Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT keyfall.keyfall_user_by_email($1),
                        (SELECT CASE WHEN count(*) = 1 THEN min(u.id) END FROM keyfall.users u
                          WHERE lower(u.email) = lower($1))",
            )
            .bind(probe)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(walked, scanned, "{probe:?} with {index} ({chosen:?})");
        }
        // What the cases stand for, named: twins are nobody, a unique user
        // is found in any case, a prefix is not the email.
        for (probe, found) in [
            ("walk@example.com", false),
            ("josé@example.com", false),
            ("SOLO@EXAMPLE.COM", true),
            ("solo@example.c", false),
        ] {
            let id: Option<i64> = sqlx::query_scalar("SELECT keyfall.keyfall_user_by_email($1)")
                .bind(probe)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(id.is_some(), found, "{probe} with {index}");
        }
    }
}
