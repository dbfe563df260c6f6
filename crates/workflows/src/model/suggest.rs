//! "Did you mean ...?": the closest spelling among the names allowed somewhere, by
//! edit distance, used by every remedy that names an alternative.

/// The edit distance (insertions, deletions, substitutions and swaps of neighbours)
/// between `a` and `b`, comparing characters ignoring ASCII case.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rows are enough.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut current = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        before = std::mem::replace(&mut previous, current);
    }
    previous[b.len()]
}

/// The candidate closest to `word`, when close enough to be a likely typo: at most a
/// third of the word's length (at least 1, at most 3) edits away. Ties go to the
/// first candidate.
pub(crate) fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `Did you mean 'x'?` when a candidate is close, else `{otherwise}` followed by the
/// candidates (`Allowed here: a, b, c.`). `what` names the candidates in the fallback.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str], what: &str) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(c) if c == word => format!("'{c}' is not allowed here."),
        Some(c) if c.eq_ignore_ascii_case(word) => {
            format!("Did you mean '{c}'? Names are case-sensitive.")
        }
        Some(c) => format!("Did you mean '{c}'?"),
        None if candidates.is_empty() => format!("No {what} are allowed here."),
        None => format!(
            "{} allowed here: {}.",
            capitalized(what),
            quoted_list(candidates)
        ),
    }
}

/// `'a', 'b', 'c'`.
pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("steps", "steps"), 0);
        assert_eq!(edit_distance("stesp", "steps"), 1);
        assert_eq!(edit_distance("Steps", "steps"), 0);
        assert_eq!(edit_distance("run-on", "runs-on"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_only_when_close_enough() {
        let keys = ["steps", "runs-on", "needs", "env"];
        assert_eq!(closest("stesp", keys), Some("steps"));
        assert_eq!(closest("secret", ["secrets", "github"]), Some("secrets"));
        assert_eq!(closest("zzzzzz", keys), None);
        assert_eq!(closest("ev", keys), Some("env"));
    }

    #[test]
    fn did_you_mean_falls_back_to_the_list() {
        let keys = ["steps", "needs"];
        assert_eq!(
            did_you_mean("stepz", &keys, "keys"),
            "Did you mean 'steps'?"
        );
        assert_eq!(
            did_you_mean("Steps", &keys, "keys"),
            "Did you mean 'steps'? Names are case-sensitive."
        );
        assert_eq!(
            did_you_mean("qqqqqqq", &keys, "keys"),
            "Keys allowed here: 'steps', 'needs'."
        );
    }
}
