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

#[cfg(test)]
mod tests {
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
