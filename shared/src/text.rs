//! Cutting text to a size, one way everywhere: a message must never echo a megabyte back, a title
//! must fit its field, a message must fit SNS.

/// How much of a caller's value a message shows.
pub const SHOWN_CHARS: usize = 81;

/// `text` in at most `max` characters; when cut, its last character is `…`.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let kept: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{}…", kept.trim_end())
        }
    }
}

/// A caller's value as a message shows it.
pub fn shown(value: &str) -> String {
    truncate(value, SHOWN_CHARS)
}

/// `text` with its middle cut out when long: serde quotes an offending value in full, and a 1 MB
/// value must not become a 1 MB error; both ends stay, where the value starts and where serde says
/// what it expected.
pub fn ends(text: &str) -> String {
    const KEEP: usize = 150;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 2 * KEEP + 20 {
        return text.to_owned();
    }
    let omitted = chars.len() - 2 * KEEP;
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!("{head}…({omitted} characters omitted)…{tail}")
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn prefix_bytes(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max.min(text.len()))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_text_ends_in_a_marker_within_the_limit() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghij", 5), "abcd…");
        let long = "é".repeat(500);
        assert_eq!(shown(&long).chars().count(), SHOWN_CHARS);
        assert_eq!(prefix_bytes("aé", 2), "a", "never inside a character");
    }

    #[test]
    fn a_long_value_keeps_its_two_ends_and_says_how_much_is_cut() {
        let value = |middle: usize| format!("{}{}{}", "é".repeat(150), "m".repeat(middle), "z".repeat(150));
        assert_eq!(ends(&value(20)), value(20), "320 characters are shown whole");
        let cut = ends(&value(21));
        assert_eq!(cut, format!("{}…(21 characters omitted)…{}", "é".repeat(150), "z".repeat(150)));
        assert_eq!(ends(&value(10_000)), format!("{}…(10000 characters omitted)…{}", "é".repeat(150), "z".repeat(150)));
    }
}
