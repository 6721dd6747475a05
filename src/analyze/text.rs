//! Text normalization before segmentation: one canonical form, so that lexicons, brand aliases
//! and posts meet on equal terms (full-width ＡＢＣ and ！ as their ASCII forms, English in lower
//! case, emoji without presentation selectors, English contractions opened up).

/// Normalizes text for analysis.
pub fn normalize(text: &str) -> String {
    normalize_marking_stops(text).text
}

/// A normalized text, with the stops found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    /// The stops of `text` (see [`clause_chunks`]), in order.
    pub stops: Vec<Stop>,
}

/// A punctuation mark where jieba's segmentation can be cut without changing a token (see
/// `stop_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// Byte range in the normalized text.
    pub start: usize,
    pub end: usize,
    /// Ends a sentence (`。!?…`, line breaks) rather than a clause (`,;:、`).
    pub hard: bool,
}

/// Whether `b` is the UTF-8 lead byte of a common CJK ideograph (U+4000–U+9FFF, lead bytes
/// E4–E9): the commonest character of a Chinese post, which several fast paths step over.
pub fn is_ideograph_lead(b: u8) -> bool {
    (0xE4..=0xE9).contains(&b)
}

/// What a byte can start: a character that normalization changes, a stop, or both; or an
/// ASCII character that an [`Observer`] is shown ([`OBSERVED_ASCII`]).
const CHANGES: u8 = 1;
const STOPS: u8 = 2;
const OBSERVED: u8 = 4;

/// The ASCII characters, besides those normalization changes, that an [`Observer`] is shown:
/// the ones brand folding drops between the parts of a name (`super::fold::is_separator`).
pub const OBSERVED_ASCII: &[u8] = b" \t-_.*/|~";
static BYTE_CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = b'A';
    while b <= b'Z' {
        class[b as usize] = CHANGES;
        b += 1;
    }
    // U+00A0; U+2018–U+2019, U+200B–U+200D and …; U+3000 and 。; U+FExx and U+FFxx (！ and ？).
    class[0xC2] = CHANGES;
    class[0xE2] = CHANGES | STOPS;
    class[0xE3] = CHANGES | STOPS;
    class[0xEF] = CHANGES | STOPS;
    class[b'!' as usize] = STOPS;
    class[b'?' as usize] = STOPS;
    class[b',' as usize] = STOPS;
    class[b';' as usize] = STOPS;
    class[b':' as usize] = STOPS;
    class[b'\n' as usize] = STOPS;
    class[b'\r' as usize] = STOPS;
    let mut k = 0;
    while k < OBSERVED_ASCII.len() {
        class[OBSERVED_ASCII[k] as usize] = OBSERVED;
        k += 1;
    }
    class
};

/// Sees the characters of the normalized text as normalization writes them, so that a later
/// per-character pass (brand folding, `super::fold::normalize_for_matching`) needs no loop of
/// its own. Positions are byte offsets in the normalized text. Ideographs, other characters
/// normalization keeps and [`OBSERVED_ASCII`] are shown; other ASCII (letters, digits) and the
/// non-ASCII characters whose lead byte starts nothing normalization changes are not.
pub trait Observer {
    /// A three-byte ideograph (lead byte E4–E9), its bytes as written.
    fn ideograph(&mut self, at: usize, bytes: [u8; 3]);
    /// Any other character shown, as it stands in the normalized text.
    fn character(&mut self, at: usize, c: char);
    /// Normalization rewrote the text afterwards (English contractions): the positions shown
    /// no longer hold.
    fn rewritten(&mut self);
}

/// Observes nothing: plain normalization.
struct Unobserved;

impl Observer for Unobserved {
    #[inline(always)]
    fn ideograph(&mut self, _: usize, _: [u8; 3]) {}
    #[inline(always)]
    fn character(&mut self, _: usize, _: char) {}
    fn rewritten(&mut self) {}
}

/// Normalizes `text` and marks its stops, in one pass over the bytes: this runs over every
/// post that names a brand. Most of a Chinese post needs no change, so the runs between the
/// bytes that can start a changed character are copied whole. A UTF-8 lead byte never occurs
/// inside another character, and continuation bytes are in no class, so looking at bytes one
/// by one never splits a character.
pub fn normalize_marking_stops(text: &str) -> Normalized {
    normalize_observed(text, &mut Unobserved)
}

/// [`normalize_marking_stops`], showing `observer` the characters it writes (see [`Observer`]).
pub fn normalize_observed<O: Observer>(text: &str, observer: &mut O) -> Normalized {
    let mut out = String::with_capacity(text.len());
    // About one stop per sentence; a sentence is rarely shorter than 20 bytes.
    let mut stops = Vec::with_capacity(text.len() / 20 + 1);
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // An ideograph (always three bytes long) is the commonest character and never changes:
        // step over it whole.
        if is_ideograph_lead(b) {
            if let Some(&[b0, b1, b2]) = bytes.get(i..i + 3) {
                observer.ideograph(out.len() + (i - copied), [b0, b1, b2]);
            }
            i += 3;
            continue;
        }
        let class = BYTE_CLASS[usize::from(b)];
        if class == 0 {
            i += 1;
            continue;
        }
        if class == OBSERVED {
            observer.character(out.len() + (i - copied), char::from(b));
            i += 1;
            continue;
        }
        if class == STOPS {
            // An ASCII stop, copied with its run.
            let at = out.len() + (i - copied);
            stops.push(Stop {
                start: at,
                end: at + 1,
                hard: stop_kind(char::from(b)) == Some(true),
            });
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().expect("i is a character boundary");
        let width = c.len_utf8();
        match normalized(c) {
            // Most punctuation stays as it is: it goes out with its run.
            Normalization::Keep => {
                let at = out.len() + (i - copied);
                if let Some(hard) = stop_kind(c) {
                    stops.push(Stop {
                        start: at,
                        end: at + width,
                        hard,
                    });
                }
                observer.character(at, c);
            }
            Normalization::Drop => {
                out.push_str(&text[copied..i]);
                copied = i + width;
            }
            Normalization::Replace(ascii) => {
                out.push_str(&text[copied..i]);
                if let Some(hard) = stop_kind(ascii) {
                    stops.push(Stop {
                        start: out.len(),
                        end: out.len() + 1,
                        hard,
                    });
                }
                observer.character(out.len(), ascii);
                out.push(ascii);
                copied = i + width;
            }
        }
        i += width;
    }
    out.push_str(&text[copied..]);
    // Contractions need an apostrophe: a SIMD scan for one spares the substring search.
    if memchr::memchr(b'\'', out.as_bytes()).is_some() && out.contains("n't") {
        out = out
            .replace("can't", "can not")
            .replace("won't", "will not")
            .replace("n't", " not");
        // The stops moved; find them again (English text is rare and short).
        stops = stops_of(&out);
        observer.rewritten();
    }
    Normalized { text: out, stops }
}

/// What normalization does to one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Normalization {
    Keep,
    Drop,
    Replace(char),
}

fn normalized(c: char) -> Normalization {
    match c {
        'A'..='Z' => Normalization::Replace(c.to_ascii_lowercase()),
        // Full-width ASCII variants → ASCII.
        '\u{FF01}'..='\u{FF5E}' => {
            let ascii = char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c);
            Normalization::Replace(ascii.to_ascii_lowercase())
        }
        '\u{3000}' | '\u{00A0}' => Normalization::Replace(' '),
        // Variation selectors and zero-width joiners carry no meaning for scoring.
        '\u{FE0E}' | '\u{FE0F}' | '\u{200B}' | '\u{200D}' | '\u{FEFF}' => Normalization::Drop,
        // Curly apostrophes, so "don’t" opens up like "don't".
        '\u{2019}' | '\u{2018}' => Normalization::Replace('\''),
        _ => Normalization::Keep,
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

/// Whether `c` is a stop, and if so whether it ends a sentence (`Some(true)`) or a clause.
///
/// jieba never joins a stop to a neighbour: it segments the runs of text between such marks
/// independently (none is in its class of word characters), so cutting a text right after
/// them first yields the same tokens as cutting it whole. (`.` ends sentences too, but jieba
/// keeps it inside words like `3.5`, so it is no safe place to cut.) Full-width `，；：` are
/// already ASCII here.
fn stop_kind(c: char) -> Option<bool> {
    match c {
        '。' | '!' | '?' | '…' | '\n' | '\r' => Some(true),
        ',' | ';' | ':' | '、' => Some(false),
        _ => None,
    }
}

/// The stops of a normalized text, found again from scratch.
fn stops_of(text: &str) -> Vec<Stop> {
    text.char_indices()
        .filter_map(|(i, c)| {
            stop_kind(c).map(|hard| Stop {
                start: i,
                end: i + c.len_utf8(),
                hard,
            })
        })
        .collect()
}

/// A piece of a text that can be segmented on its own: a clause with the run of stops that
/// ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Byte range.
    pub start: usize,
    pub end: usize,
    /// Its run of stops ends a sentence (so does the end of the text).
    pub ends_sentence: bool,
    /// Holds something besides its stops, so that segmenting it yields a clause.
    pub has_content: bool,
}

/// Splits a text of `len` bytes into clause chunks: each ends after a run of `stops`, except
/// inside `protected` byte spans (brand mentions, which must stay whole). The chunks cover the
/// text, in order.
pub fn clause_chunks(len: usize, stops: &[Stop], protected: &[(usize, usize)]) -> Vec<Chunk> {
    let mut chunks = Vec::with_capacity(stops.len() + 1);
    let mut start = 0;
    // The run of stops that will end the current chunk: where it began, and whether it holds
    // a sentence stop. Every cut clears it.
    let mut run: Option<(usize, bool)> = None;
    for (k, stop) in stops.iter().enumerate() {
        let (run_start, hard) = match run {
            Some((s, h)) => (s, h || stop.hard),
            None => (stop.start, stop.hard),
        };
        run = Some((run_start, hard));
        let run_goes_on = stops.get(k + 1).is_some_and(|next| next.start == stop.end);
        if run_goes_on || stop.end >= len {
            continue;
        }
        if protected.iter().any(|&(s, e)| s < stop.end && stop.end < e) {
            // Not a place to cut: the stop belongs to the chunk's text.
            run = None;
            continue;
        }
        chunks.push(Chunk {
            start,
            end: stop.end,
            ends_sentence: hard,
            has_content: run_start > start,
        });
        start = stop.end;
        run = None;
    }
    if start < len {
        // A run still open here reaches the end of the text.
        let content_end = run.map_or(len, |(s, _)| s);
        chunks.push(Chunk {
            start,
            end: len,
            ends_sentence: true,
            has_content: content_end > start,
        });
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
        .is_some_and(|&b| is_ideograph_lead(b) || b.is_ascii_alphanumeric())
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
        let t = "Ａ度小满ＯＫ，\u{3000}“好”…😀\u{FE0F}\u{200B}x\u{00A0}é Ünï É。！？\n?";
        let mut expected = String::new();
        for c in t.chars() {
            match normalized(c) {
                Normalization::Keep => expected.push(c),
                Normalization::Drop => {}
                Normalization::Replace(r) => expected.push(r),
            }
        }
        let n = normalize_marking_stops(t);
        assert_eq!(n.text, expected);
        assert_eq!(n.stops, stops_of(&expected));
        let kinds: Vec<bool> = n.stops.iter().map(|s| s.hard).collect();
        assert_eq!(kinds, [false, true, true, true, true, true, true]);
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
    fn clause_chunks_end_after_runs_of_stops() {
        let n = normalize_marking_stops("好，坏。。坏！\r\n3.5亿?，、");
        let t = n.text.as_str();
        assert_eq!(t, "好,坏。。坏!\r\n3.5亿?,、");
        let chunks = clause_chunks(t.len(), &n.stops, &[]);
        let texts: Vec<&str> = chunks.iter().map(|c| &t[c.start..c.end]).collect();
        assert_eq!(texts, ["好,", "坏。。", "坏!\r\n", "3.5亿?,、"]);
        let ends: Vec<bool> = chunks.iter().map(|c| c.ends_sentence).collect();
        assert_eq!(ends, [false, true, true, true]);
        assert!(chunks.iter().all(|c| c.has_content));
        let protected = [(t.find('坏').unwrap(), t.find('亿').unwrap())];
        assert_eq!(
            clause_chunks(t.len(), &n.stops, &protected).len(),
            2,
            "a mention stays whole"
        );
        assert!(clause_chunks(0, &[], &[]).is_empty());

        // Runs of stops alone hold no clause.
        let n = normalize_marking_stops("。,好,。");
        let chunks = clause_chunks(n.text.len(), &n.stops, &[]);
        let content: Vec<bool> = chunks.iter().map(|c| c.has_content).collect();
        assert_eq!(content, [false, true]);
        let n = normalize_marking_stops("好。\n");
        let chunks = clause_chunks(n.text.len(), &n.stops, &[]);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].has_content && chunks[0].ends_sentence);
        let n = normalize_marking_stops("好,!!");
        let chunks = clause_chunks(n.text.len(), &n.stops, &[]);
        assert_eq!(chunks.len(), 1);

        let english = normalize_marking_stops("It doesn't work! Really?");
        assert_eq!(english.text, "it does not work! really?");
        let at: Vec<(usize, usize)> = english.stops.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(at, [(16, 17), (24, 25)]);
    }
}
