//! Text normalization before segmentation: one canonical form, so that lexicons, brand aliases
//! and posts meet on equal terms (full-width ＡＢＣ and ！ as their ASCII forms, English in lower
//! case, emoji without presentation selectors, English contractions opened up).

/// Normalizes text for analysis. Cheap: one pass, no allocation beyond the output.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Most of a Chinese post needs no change: copy the runs between the bytes that can start
    // a changed character (ASCII capitals, and the lead bytes of U+00A0, U+2018–U+2019,
    // U+200B–U+200D, U+3000, U+FExx/U+FFxx). UTF-8 lead bytes never occur inside another
    // character, so the runs split only between characters.
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_uppercase() || matches!(b, 0xC2 | 0xE2 | 0xE3 | 0xEF)) {
            i += utf8_width(b);
            continue;
        }
        out.push_str(&text[copied..i]);
        let c = text[i..].chars().next().expect("i is a character boundary");
        normalize_char(c, &mut out);
        i += c.len_utf8();
        copied = i;
    }
    out.push_str(&text[copied..]);
    if out.contains("n't") {
        out = out
            .replace("can't", "can not")
            .replace("won't", "will not")
            .replace("n't", " not");
    }
    out
}

/// The length of the UTF-8 character that starts with byte `lead`.
fn utf8_width(lead: u8) -> usize {
    match lead {
        0..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn normalize_char(c: char, out: &mut String) {
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

/// Characters that always end a sentence and that jieba never joins to a neighbour: it
/// segments the runs of text between them independently, so cutting a text at them first
/// yields the same tokens as cutting it whole. (`.` ends sentences too, but jieba keeps it
/// inside words like `3.5`, so it is no safe place to cut.)
fn is_hard_stop(c: char) -> bool {
    matches!(c, '。' | '!' | '?' | '…' | '\n' | '\r')
}

/// Splits `text` into sentence chunks: each ends after a run of hard stops (see
/// `is_hard_stop`), except inside `protected` byte spans (brand mentions, which must stay
/// whole). The chunks cover the text, in order.
pub fn sentence_chunks(text: &str, protected: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut in_stops = false;
    // Lead bytes, not decoded chars: this runs over every post. The stops are ASCII, or three
    // bytes led by E2 (…) or E3 (。).
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let (stop, width) = match bytes[i] {
            b'!' | b'?' | b'\n' | b'\r' => (true, 1),
            0xE2 | 0xE3 => {
                let c = text[i..].chars().next().expect("i is a character boundary");
                (is_hard_stop(c), c.len_utf8())
            }
            lead => (false, utf8_width(lead)),
        };
        if in_stops && !stop && !protected.iter().any(|&(s, e)| s < i && i < e) {
            chunks.push((start, i));
            start = i;
        }
        in_stops = stop;
        i += width;
    }
    if start < text.len() {
        chunks.push((start, text.len()));
    }
    chunks
}

/// What a token is to the scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Word,
    /// Whitespace or decoration ([`is_filler`]).
    Filler,
    /// A clause or sentence boundary ([`boundary`]).
    Boundary(Boundary),
}

/// Classifies a token once, for every later stage.
pub fn token_kind(token: &str) -> TokenKind {
    // Fast exit for what most tokens are: CJK ideographs (lead bytes E4–E9) and ASCII words.
    if token
        .as_bytes()
        .first()
        .is_some_and(|&b| (0xE4..=0xE9).contains(&b) || b.is_ascii_alphanumeric())
    {
        return TokenKind::Word;
    }
    if let Some(b) = boundary(token) {
        return TokenKind::Boundary(b);
    }
    if is_filler(token) {
        return TokenKind::Filler;
    }
    TokenKind::Word
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
    fn the_fast_path_changes_exactly_what_the_rules_change() {
        let t = "Ａ度小满ＯＫ，\u{3000}“好”…😀\u{FE0F}\u{200B}x\u{00A0}é Ünï É。";
        let mut expected = String::new();
        for c in t.chars() {
            normalize_char(c, &mut expected);
        }
        assert_eq!(normalize(t), expected);
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

    #[test]
    fn sentence_chunks_end_after_runs_of_stops() {
        let t = "好。。坏!\r\n3.5亿?";
        let chunks: Vec<&str> = sentence_chunks(t, &[])
            .into_iter()
            .map(|(s, e)| &t[s..e])
            .collect();
        assert_eq!(chunks, ["好。。", "坏!\r\n", "3.5亿?"]);
        let protected = [(t.find('坏').unwrap(), t.find('亿').unwrap())];
        assert_eq!(
            sentence_chunks(t, &protected).len(),
            2,
            "a mention stays whole"
        );
        assert!(sentence_chunks("", &[]).is_empty());
    }
}
