//! Text normalization before segmentation: one canonical form, so that lexicons, brand aliases
//! and posts meet on equal terms (full-width ＡＢＣ and ！ as their ASCII forms, English in lower
//! case, emoji without presentation selectors, English contractions opened up).

/// Normalizes text for analysis. Cheap: one pass, no allocation beyond the output.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // Full-width ASCII variants → ASCII.
            '\u{FF01}'..='\u{FF5E}' => {
                let ascii = char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c);
                out.push(ascii.to_ascii_lowercase());
            }
            '\u{3000}' | '\u{00A0}' => out.push(' '),
            // Variation selectors and zero-width joiners carry no meaning for scoring.
            '\u{FE0E}' | '\u{FE0F}' | '\u{200B}' | '\u{200D}' | '\u{FEFF}' => {}
            // Curly apostrophes, so "don’t" opens up like "don't".
            '\u{2019}' | '\u{2018}' => out.push('\''),
            _ => out.push(c.to_ascii_lowercase()),
        }
    }
    if out.contains("n't") {
        out = out
            .replace("can't", "can not")
            .replace("won't", "will not")
            .replace("n't", " not");
    }
    out
}

/// What ends a clause, and whether it also ends a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// A comma-like break inside a sentence.
    Clause,
    /// A full stop, question mark, exclamation mark or line break.
    Sentence,
}

/// Classifies a token as a boundary. Tokens come from jieba, which emits punctuation as
/// tokens of its own.
pub fn boundary(token: &str) -> Option<Boundary> {
    let first = *token.as_bytes().first()?;
    // Fast exit for what most tokens are: CJK ideographs (lead bytes E4–E9) and ASCII words.
    if (0xE4..=0xE9).contains(&first) || first.is_ascii_alphanumeric() {
        return None;
    }
    if token.contains('\n') {
        return Some(Boundary::Sentence);
    }
    let mut chars = token.chars();
    let first = chars.next()?;
    if !chars.all(|c| c == first || c == '!' || c == '?') {
        return None;
    }
    match first {
        '。' | '!' | '?' | '…' | '.' | '\r' => Some(Boundary::Sentence),
        ',' | '、' | ';' | ':' | '，' | '；' | '：' => Some(Boundary::Clause),
        _ => None,
    }
}

/// True for tokens that are only whitespace or decoration and take no part in scoring.
pub fn is_filler(token: &str) -> bool {
    token.chars().all(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '"' | '\''
                    | '“'
                    | '”'
                    | '「'
                    | '」'
                    | '('
                    | ')'
                    | '《'
                    | '》'
                    | '【'
                    | '】'
                    | '~'
                    | '-'
                    | '—'
                    | '*'
                    | '#'
                    | '@'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_width_case_and_contractions() {
        assert_eq!(normalize("ＡＢＣ！度小满"), "abc!度小满");
        assert_eq!(normalize("It DOESN’T work"), "it does not work");
        assert_eq!(normalize("I can't"), "i can not");
        assert_eq!(normalize("❤\u{FE0F}"), "❤");
        assert_eq!(
            normalize("度小满\u{3000}有钱花\u{00A0}ＯＫ"),
            "度小满 有钱花 ok"
        );
        assert_eq!(normalize("“好”"), "“好”", "other punctuation is kept");
    }

    #[test]
    fn boundaries() {
        assert_eq!(boundary("。"), Some(Boundary::Sentence));
        assert_eq!(boundary("!!!"), Some(Boundary::Sentence));
        assert_eq!(boundary("?!"), Some(Boundary::Sentence));
        assert_eq!(boundary(","), Some(Boundary::Clause));
        assert_eq!(boundary("\n"), Some(Boundary::Sentence));
        assert_eq!(boundary("好"), None);
        assert!(is_filler("  "));
        assert!(!is_filler("好"));
    }
}
