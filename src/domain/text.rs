//! Text from the database is data, never terminal commands: control, escape
//! and BiDi characters are shown as visible escapes before anything is printed.

use std::borrow::Cow;

/// Characters that would move the cursor, change colours, reorder text or
/// otherwise act on a terminal rather than be shown by it.
fn is_hostile(c: char) -> bool {
    c.is_control() // C0, DEL, C1
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

/// `s` with every hostile character replaced by a visible escape (`\x1b`,
/// `\u{202e}`); borrowed unchanged when there is nothing to escape.
pub fn visible(s: &str) -> Cow<'_, str> {
    escape_where(s, is_hostile)
}

/// `s` with every character `escape` picks written as `\x..` / `\u{..}`;
/// borrowed unchanged when there is none.
fn escape_where(s: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !escape(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// `visible`, cut to at most `max` characters with an ellipsis, for one-line
/// displays of possibly huge strings.
pub fn visible_short(s: &str, max: usize) -> String {
    let shown = visible(s);
    if shown.chars().count() <= max {
        return shown.into_owned();
    }
    let mut out: String = shown.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An identity (an email, a login, an audit actor) as it must be shown: on
/// top of `visible`, every character outside printable ASCII is escaped, so
/// a look-alike — `dev@igny8.com` with a Cyrillic `е`, a zero-width space —
/// never reads as the real one.
pub fn identity(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| !(c.is_ascii_graphic() || c == ' '))
}

/// `identity`, cut to at most `max` characters.
pub fn identity_short(s: &str, max: usize) -> String {
    let shown = identity(s);
    if shown.chars().count() <= max {
        return shown.into_owned();
    }
    let mut out: String = shown.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Whether an identity holds characters that could make it look like
/// another one (anything outside printable ASCII).
pub fn is_lookalike(s: &str) -> bool {
    !s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

/// "97,412": thousands grouped by commas.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::from(if n < 0 { "-" } else { "" });
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 account", "3 users", "97,412 accounts".
pub fn count(n: i64, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{} {what}s", grouped(n)) }
}

/// `n` accounts with the first few named: "1 account (acme)",
/// "97,412 accounts (a1, a2, a3 and 97,409 more)"; each slug made visible
/// and cut to `max` characters.
pub fn accounts_named(n: i64, examples: &[String], max: usize) -> String {
    let mut out = count(n, "account");
    if examples.is_empty() {
        return out;
    }
    let names: Vec<String> = examples.iter().map(|s| visible_short(s, max)).collect();
    out.push_str(" (");
    out.push_str(&names.join(", "));
    let more = n - examples.len() as i64;
    if more > 0 {
        out.push_str(&format!(" and {} more", grouped(more)));
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn accounts_are_counted_and_the_first_named() {
        use super::accounts_named;
        assert_eq!(accounts_named(1, &["acme".into()], 20), "1 account (acme)");
        assert_eq!(accounts_named(2, &["a".into(), "b".into()], 20), "2 accounts (a, b)");
        assert_eq!(
            accounts_named(97_412, &["a1".into(), "a2".into(), "a3".into()], 20),
            "97,412 accounts (a1, a2, a3 and 97,409 more)"
        );
        assert_eq!(accounts_named(4, &["x\u{1b}[2J".into()], 20), "4 accounts (x\\x1b[2J and 3 more)");
        assert_eq!(accounts_named(0, &[], 20), "0 accounts");
    }

    use super::*;

    #[test]
    fn escapes_are_made_visible() {
        assert_eq!(visible("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(visible("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(visible("nul\0"), "nul\\x00");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn look_alike_identities_are_told_apart() {
        assert_eq!(identity("dev@igny8.com"), "dev@igny8.com");
        assert_eq!(identity("d\u{435}v@igny8.com"), "d\\u{435}v@igny8.com");
        assert_eq!(identity("dev@igny8.com\u{200b}"), "dev@igny8.com\\u{200b}");
        assert!(is_lookalike("dev\u{200b}@igny8.com") && !is_lookalike("dev@igny8.com"));
    }

    #[test]
    fn short_cuts_long_text() {
        let long = "a".repeat(1_000_000);
        assert_eq!(visible_short(&long, 10).chars().count(), 10);
    }
}
