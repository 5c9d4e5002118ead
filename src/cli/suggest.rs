//! "Did you mean …": the names closest to a mistyped one, by edit distance
//! (insertions, deletions, substitutions and swaps of neighbours, case
//! ignored), at most three, and only plausible ones.

/// ` (did you mean a, b?)`, or nothing when no candidate is close.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let close = closest(typed, candidates);
    if close.is_empty() {
        return String::new();
    }
    let names: Vec<String> = close.iter().map(|c| crate::domain::text::visible_short(c, 80)).collect();
    format!(" (did you mean {}?)", names.join(", "))
}

/// The candidates within a plausible distance of `typed` (a third of its
/// length, at least 1, at most 3 edits), nearest first, at most three.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let typed_l = typed.to_lowercase();
    let len = typed_l.chars().count();
    let bound = (len / 3).clamp(1, 3);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| *c != typed)
        .filter_map(|c| {
            let d = distance(&typed_l, &c.to_lowercase());
            (d <= bound).then_some((d, c))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Optimal-string-alignment distance between two strings, in characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 3 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1).min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_near_names_nearest_first() {
        assert_eq!(closest("aws-admn", ["aws-admin", "acme", "aws-audit"]), vec!["aws-admin"]);
        assert_eq!(closest("modle", ["model", "apiKey", "provider"]), vec!["model"]);
        assert_eq!(closest("opnai", ["openai", "runware", "anthropic"]), vec!["openai"]);
        assert!(closest("zzz", ["openai", "runware"]).is_empty());
        assert_eq!(did_you_mean("AWS-ADMN", ["aws-admin"]), " (did you mean aws-admin?)");
        assert_eq!(did_you_mean("x", ["openai"]), "");
    }
}
