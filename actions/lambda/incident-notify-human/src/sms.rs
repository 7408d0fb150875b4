//! The SMS form of a page: one message of at most 160 GSM-7 characters.
//!
//! A single character outside the GSM 03.38 default alphabet makes the whole SMS UCS-2, where one
//! message holds 70 characters, and a longer text is split into several messages. So the text is
//! kept to the default alphabet (a few common characters are replaced by their nearest GSM-7 form,
//! any other by `?`) and cut to 160 septets, the characters of the extension table counting two.

/// Septets in one SMS.
pub const SMS_SEPTETS: usize = 160;

/// GSM 03.38 default alphabet, without the two line-break characters (an SMS page is one line).
const BASIC: &str = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
                     ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each takes an escape septet and its own.
const EXTENSION: &str = "^{}\\[~]|€";

/// How many septets `c` takes, or `None` outside GSM-7.
pub fn septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The nearest GSM-7 form of a character outside the alphabet.
fn nearest(c: char) -> &'static str {
    match c {
        '‘' | '’' | '‚' | '′' | '`' => "'",
        '“' | '”' | '„' | '″' => "\"",
        '–' | '—' | '‐' | '−' => "-",
        '…' => "...",
        'á' | 'â' | 'ã' | 'ā' => "a",
        'í' | 'î' | 'ï' => "i",
        'ó' | 'ô' | 'õ' => "o",
        'ú' | 'û' => "u",
        'ê' | 'ë' | 'ē' => "e",
        'ç' => "Ç",
        'Á' | 'À' | 'Â' | 'Ã' => "A",
        'È' | 'Ê' | 'Ë' => "E",
        'Í' | 'Ì' | 'Î' | 'Ï' => "I",
        'Ó' | 'Ò' | 'Ô' | 'Õ' => "O",
        'Ú' | 'Ù' | 'Û' => "U",
        // Line breaks, tabs, no-break spaces: one space (a page's SMS is one line).
        c if c.is_whitespace() => " ",
        _ => "?",
    }
}

/// `text` in the GSM-7 default alphabet, in one SMS: cut to [`SMS_SEPTETS`], ending in `...` when cut.
pub fn fit(text: &str) -> String {
    let mut mapped = String::with_capacity(text.len());
    for c in text.chars() {
        if septets(c).is_some() {
            mapped.push(c);
        } else {
            mapped.push_str(nearest(c));
        }
    }
    let collapsed = mapped.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
    if length(&collapsed) <= SMS_SEPTETS {
        return collapsed;
    }
    let mut kept = String::new();
    let mut used = 0;
    for c in collapsed.chars() {
        let n = septets(c).unwrap_or(1);
        if used + n > SMS_SEPTETS - 3 {
            break;
        }
        kept.push(c);
        used += n;
    }
    format!("{}...", kept.trim_end())
}

/// Septets `text` takes; characters outside GSM-7 count as one (they do not occur after [`fit`]).
pub fn length(text: &str) -> usize {
    text.chars().map(|c| septets(c).unwrap_or(1)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gsm7_only(text: &str) -> bool {
        text.chars().all(|c| septets(c).is_some())
    }

    #[test]
    fn a_short_ascii_page_is_unchanged() {
        assert_eq!(fit("[CRITICAL] INC-42: DB down"), "[CRITICAL] INC-42: DB down");
        assert_eq!(length("[CRITICAL]"), 12, "square brackets are in the extension table");
    }

    #[test]
    fn text_outside_gsm7_is_replaced_so_the_sms_stays_gsm7() {
        let text = fit("[HIGH] INC-1: “Checkout” – 🚨 naïve café\nline");
        assert!(gsm7_only(&text), "{text}");
        assert_eq!(text, "[HIGH] INC-1: \"Checkout\" - ? naive café line");
    }

    #[test]
    fn a_long_page_is_cut_to_one_sms() {
        let text = fit(&format!("[CRITICAL] INC-42: {}", "{x} ".repeat(100)));
        assert!(length(&text) <= SMS_SEPTETS, "{} septets", length(&text));
        assert!(text.ends_with("..."));
        assert!(gsm7_only(&text));
    }

    #[test]
    fn a_page_of_exactly_one_sms_is_kept_whole_and_one_septet_more_is_cut() {
        let exactly = "a".repeat(SMS_SEPTETS);
        assert_eq!(fit(&exactly), exactly, "160 septets are one SMS");
        let one_more = "a".repeat(SMS_SEPTETS + 1);
        let cut = fit(&one_more);
        assert_eq!(cut, format!("{}...", "a".repeat(SMS_SEPTETS - 3)), "157 kept, then the marker");
        assert_eq!(length(&cut), SMS_SEPTETS);
        // Extension characters count two: 79 of them and one plain character are 159 septets.
        let wide = format!("{}a", "€".repeat(79));
        assert_eq!((length(&wide), fit(&wide)), (159, wide.clone()));
        let over = format!("{}aa", "€".repeat(79));
        assert_eq!(length(&over), 160, "still one SMS");
        assert_eq!(fit(&format!("{over}a")), format!("{}...", "€".repeat(78)), "a two-septet character is never split");
    }

    #[test]
    fn a_cut_does_not_end_in_a_space_before_its_marker_and_spaces_collapse() {
        let text = format!("{} {}", "a".repeat(156), "b".repeat(10));
        assert_eq!(fit(&text), format!("{}...", "a".repeat(156)));
        assert_eq!(fit("a  \t\n b"), "a b");
    }

    #[test]
    fn every_replacement_is_its_nearest_gsm7_form() {
        for (from, to) in [
            ("‘’‚′`", "'''''"),
            ("“”„″", "\"\"\"\""),
            ("–—‐−", "----"),
            ("…", "..."),
            ("áâãā íîï óôõ úû êëē ç", "aaaa iii ooo uu eee Ç"),
            ("ÁÀÂÃ ÈÊË ÍÌÎÏ ÓÒÔÕ ÚÙÛ", "AAAA EEE IIII OOOO UUU"),
            ("a\u{00a0}b", "a b"),
            ("🚨", "?"),
        ] {
            assert_eq!(fit(from), to, "{from}");
        }
        assert_eq!(length("€a🚨"), 4, "an extension character counts two, any other one");
    }
}
