//! Rule-based, target-aware sentiment over segmented text.
//!
//! Scoring runs in two steps, so that a text naming several brands is segmented and scored
//! once:
//! 1. [`contributions`]: every sentiment-bearing token becomes a signed contribution, already
//!    adjusted by the rules that do not depend on the target: negation scope (不是不好 is
//!    positive), degree adverbs (非常), contrast (the clause after 但是 weighs more),
//!    exclamations, rhetorical questions (难道这也叫好服务？ is criticism), Weibo emoticons and
//!    emoji.
//! 2. judging (`Analyzer::judge_doc`): the contributions inside the target's window (the
//!    clauses that mention it and their neighbours, see [`scope_weights`]) are weighted and
//!    summed. Comparatives are resolved here: in "A比B差" the 差 belongs to A, and counts the
//!    other way for B.

use super::fold;
use super::lexicon::{Entry, Lexicon};
use super::text::{is_ideograph_lead, TokenKind};
use super::Doc;

/// Negated positive words count this much, negated (so 不好 is clearly negative).
const NEGATED_POSITIVE: f64 = 0.9;
/// Negated negative words count this much, negated: 不差 is faint praise, not praise.
const NEGATED_NEGATIVE: f64 = 0.5;
/// How much an exclamation mark amplifies its clause, and a run of them.
const EXCLAIM: f64 = 1.3;
const EXCLAIM_RUN: f64 = 1.5;
/// How many tokens a degree adverb reaches.
const DEGREE_REACH: u8 = 3;
/// Negation prefixes that jieba often glues to the word they negate (不好, 没用, 无效).
const GLUED_NEGATIONS: &[char] = &['不', '没', '无', '未', '非', '别'];
/// How much 好 intensifies the negative word right after it (好坑, 好恶心): there it means
/// "so", not "good".
const HAO_DEGREE: f64 = 1.5;
/// Longest English lexicon phrase, in words.
const MAX_PHRASE_WORDS: usize = 4;
/// Longest token searched for lexicon terms inside it, in characters.
const MAX_COMPOUND_CHARS: usize = 12;
/// Longest lexicon term looked for inside a compound token, in characters.
const MAX_INNER_CHARS: usize = 4;

/// Which rules shaped a contribution: a bit set, so recording them costs no allocation on the
/// hot path; [`Rules::names`] spells them out for explanations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules(u16);

impl Rules {
    pub const EMOTICON: Rules = Rules(1);
    pub const EMOJI: Rules = Rules(1 << 1);
    pub const DEGREE: Rules = Rules(1 << 2);
    pub const NEGATED: Rules = Rules(1 << 3);
    pub const DOUBLE_NEGATION: Rules = Rules(1 << 4);
    pub const BEFORE_CONTRAST: Rules = Rules(1 << 5);
    pub const AFTER_CONTRAST: Rules = Rules(1 << 6);
    pub const EXCLAMATION: Rules = Rules(1 << 7);
    pub const RHETORICAL: Rules = Rules(1 << 8);
    pub const COMPARATIVE: Rules = Rules(1 << 9);
    pub const WINDOW_DISTANCE: Rules = Rules(1 << 10);
    pub const LEARNED: Rules = Rules(1 << 11);
    pub const VERDICT: Rules = Rules(1 << 12);
    pub const PASSIVE: Rules = Rules(1 << 13);

    const NAMES: [&'static str; 14] = [
        "emoticon",
        "emoji",
        "degree",
        "negated",
        "double negation",
        "before contrast",
        "after contrast",
        "exclamation",
        "rhetorical question",
        "comparative (target is the better side)",
        "window distance",
        "learned weight",
        "verdict on the target (<target> 真/太/好 + negative word)",
        "passive (被<target>…了)",
    ];

    pub fn insert(&mut self, rule: Rules) {
        self.0 |= rule.0;
    }

    pub fn contains(self, rule: Rules) -> bool {
        self.0 & rule.0 == rule.0
    }

    pub fn names(self) -> Vec<&'static str> {
        (0..Self::NAMES.len())
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| Self::NAMES[i])
            .collect()
    }
}

impl serde::Serialize for Rules {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// One token's signed effect on the score, before target weighting.
#[derive(Debug, Clone, PartialEq)]
pub struct RawContribution {
    pub clause: usize,
    /// Token index in the document.
    pub token: usize,
    /// How the term is shown: 暴力催收, 不…好, `[怒]`.
    pub term: String,
    pub value: f64,
    /// Which rules shaped the value, for explanations.
    pub rules: Rules,
    /// Token index of a comparative marker (比) earlier in the same clause, if any.
    pub comparative_at: Option<usize>,
}

/// A crisis term found in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct CrisisMark {
    pub clause: usize,
    pub category: usize,
    pub term: String,
}

/// Target-independent scoring of a document. With `weights` (per-clause window weights), only
/// the weighted clauses are scored: the others cannot change any target's verdict, and were
/// not even segmented. Contrast and rhetorical questions act within the run of window clauses
/// they stand in, as within a sentence of a whole text.
pub fn contributions(
    doc: &Doc,
    lex: &Lexicon,
    weights: Option<&[f64]>,
) -> (Vec<RawContribution>, Vec<CrisisMark>) {
    let mut out: Vec<RawContribution> = Vec::with_capacity(doc.tokens.len() / 8 + 4);
    let mut crisis = Vec::new();
    let mut sentence_start = 0; // index into `out` where the current sentence began
    let mut after_contrast = 1.0;
    let mut rhetorical = false;
    let mut unit_buf: Vec<Unit> = Vec::with_capacity(4);

    let mut previous = None;
    for (ci, clause) in doc.clauses.iter().enumerate() {
        if weights.is_some_and(|w| w[ci] == 0.0) {
            continue;
        }
        // Contrast and rhetorical questions act within a sentence, on the clauses read of it:
        // a run of window clauses.
        let same_run = ci > 0
            && previous == Some(ci - 1)
            && !clause.after_gap
            && doc.clauses[ci - 1].sentence == clause.sentence;
        if !same_run {
            sentence_start = out.len();
            after_contrast = 1.0;
            rhetorical = false;
        }
        previous = Some(ci);
        let clause_start = out.len();
        let mut negations: Vec<(usize, u8, &str)> = Vec::new(); // (token, remaining reach, word)
        let mut degree = 1.0;
        let mut degree_left = 0u8;
        let mut comparative_at = None;

        let mut ti = clause.start;
        while ti < clause.end {
            let word = doc.word(ti);
            if let Some((end, weight)) = doc.emoticon_at(ti) {
                out.push(RawContribution {
                    clause: ci,
                    token: ti,
                    term: doc.text[doc.tokens[ti].0..end].to_string(),
                    value: weight,
                    rules: Rules::EMOTICON,
                    comparative_at: None,
                });
                while ti < clause.end && doc.tokens[ti].0 < end {
                    ti += 1;
                }
                continue;
            }
            ti += 1;
            let token = ti - 1;
            // Most tokens are one or two ideographs that no lexicon knows, and score nothing:
            // they only age the pending negation and degree.
            if doc.known[token].entry.is_none() && is_plain_ideographs(word) {
                age(&mut negations, &mut degree, &mut degree_left);
                continue;
            }
            if doc.kinds[token] == TokenKind::Filler {
                continue;
            }
            if word == "比" || word == "than" {
                comparative_at = Some(token);
            }

            // English phrases ("hidden fees") span several tokens: try the longest first.
            match english_phrase(doc, token, clause.end, lex) {
                Some((next, entry, text)) => {
                    ti = next;
                    unit_buf.clear();
                    unit_buf.push(Unit::Known(entry, text));
                }
                None => {
                    let entry = doc.known[token].entry.map(|id| lex.entry_by_id(id));
                    units(word, entry, lex, &mut unit_buf)
                }
            }
            for unit in unit_buf.drain(..) {
                let (entry, glued) = match unit {
                    Unit::Known(e, _) => (Some(e), None),
                    Unit::Glued(e, _, neg) => (Some(e), Some(neg)),
                    Unit::Unknown(_) => (None, None),
                };
                let unit_word = unit.word();
                let Some(entry) = entry else {
                    // Emoji runs come out of jieba as one token: score each symbol.
                    if is_symbol_run(unit_word) {
                        for sym in unit_word.chars() {
                            if let Some(e) = lex.get(sym.encode_utf8(&mut [0; 4])) {
                                if e.polarity != 0.0 {
                                    out.push(RawContribution {
                                        clause: ci,
                                        token,
                                        term: sym.to_string(),
                                        value: e.polarity,
                                        rules: Rules::EMOJI,
                                        comparative_at: None,
                                    });
                                }
                            }
                        }
                    }
                    age(&mut negations, &mut degree, &mut degree_left);
                    continue;
                };

                if let Some(cat) = entry.crisis {
                    crisis.push(CrisisMark {
                        clause: ci,
                        category: cat,
                        term: unit_word.to_string(),
                    });
                }
                if entry.rhetorical {
                    rhetorical = true;
                }
                if let Some((before, after)) = entry.contrast {
                    for c in &mut out[sentence_start..] {
                        c.value *= before;
                        c.rules.insert(Rules::BEFORE_CONTRAST);
                    }
                    after_contrast = after;
                    continue;
                }
                // 好 right before a negative word is "so" (好坑, 好 恶心), not praise.
                if unit_word == "好"
                    && doc.known.get(ti).is_some_and(|k| k.sign < 0)
                    && ti < clause.end
                {
                    degree *= HAO_DEGREE;
                    degree_left = DEGREE_REACH;
                    continue;
                }
                if entry.polarity == 0.0 {
                    if entry.negation_scope > 0 {
                        negations.push((token, entry.negation_scope, unit_word));
                        continue;
                    }
                    if entry.degree > 0.0 {
                        degree *= entry.degree;
                        degree_left = DEGREE_REACH;
                        continue;
                    }
                    age(&mut negations, &mut degree, &mut degree_left);
                    continue;
                }

                let mut value = entry.polarity * degree;
                let mut rules = Rules::default();
                if degree != 1.0 {
                    rules.insert(Rules::DEGREE);
                }
                let negation_count = negations.len() + usize::from(glued.is_some());
                let term = match (negations.first(), glued) {
                    (_, Some(neg)) => format!("{neg}{unit_word}"),
                    (Some(&(n, _, neg)), None) if n + 1 == token => format!("{neg}{unit_word}"),
                    (Some(&(_, _, neg)), None) => format!("{neg}…{unit_word}"),
                    (None, None) => unit_word.to_string(),
                };
                if negation_count % 2 == 1 {
                    value = if value > 0.0 {
                        -value * NEGATED_POSITIVE
                    } else {
                        -value * NEGATED_NEGATIVE
                    };
                    rules.insert(Rules::NEGATED);
                } else if negation_count > 0 {
                    rules.insert(Rules::DOUBLE_NEGATION);
                }
                if after_contrast != 1.0 {
                    value *= after_contrast;
                    rules.insert(Rules::AFTER_CONTRAST);
                }
                out.push(RawContribution {
                    clause: ci,
                    token,
                    term,
                    value,
                    rules,
                    comparative_at,
                });
                negations.clear();
                degree = 1.0;
                degree_left = 0;
            }
        }

        match clause.terminator {
            Terminator::Exclamation(n) => {
                let factor = if n > 1 { EXCLAIM_RUN } else { EXCLAIM };
                for c in &mut out[clause_start..] {
                    c.value *= factor;
                    c.rules.insert(Rules::EXCLAMATION);
                }
            }
            Terminator::Question if rhetorical => {
                // "Is this what you call good service?" — praise inside a rhetorical question
                // is sarcasm.
                for c in &mut out[sentence_start..] {
                    if c.value > 0.0 {
                        c.value = -c.value;
                        c.rules.insert(Rules::RHETORICAL);
                    }
                }
            }
            _ => {}
        }
    }
    (out, crisis)
}

/// A run of two or more symbols (emoji, dingbats) that jieba returned as one token. Cheap
/// byte checks first: this is asked of every unknown token.
fn is_symbol_run(word: &str) -> bool {
    let Some(&first) = word.as_bytes().first() else {
        return false;
    };
    // ASCII and CJK ideographs (lead bytes E4–E9) are never emoji.
    if first < 0x80 || is_ideograph_lead(first) {
        return false;
    }
    word.chars().nth(1).is_some() && word.chars().all(|c| !c.is_alphanumeric())
}

/// One or two CJK ideographs that no other rule reads: not the comparative 比, and not a glued
/// negation (不好), which [`units`] splits. Too short to hold a compound.
fn is_plain_ideographs(word: &str) -> bool {
    let b = word.as_bytes();
    match b.len() {
        3 => is_ideograph_lead(b[0]) && word != "比",
        6 => {
            is_ideograph_lead(b[0]) && is_ideograph_lead(b[3]) && !word.starts_with(GLUED_NEGATIONS)
        }
        _ => false,
    }
}

/// Ages pending negations and degree adverbs by one token.
fn age(negations: &mut Vec<(usize, u8, &str)>, degree: &mut f64, degree_left: &mut u8) {
    // Nearly every token ages nothing.
    if negations.is_empty() && *degree_left == 0 {
        return;
    }
    for n in negations.iter_mut() {
        n.1 = n.1.saturating_sub(1);
    }
    negations.retain(|n| n.1 > 0);
    if *degree_left > 0 {
        *degree_left -= 1;
        if *degree_left == 0 {
            *degree = 1.0;
        }
    }
}

/// The longest lexicon phrase of 2–4 English words starting at `token`, as (the token after
/// it, its entry, its text).
fn english_phrase<'d, 'l>(
    doc: &'d Doc,
    token: usize,
    end: usize,
    lex: &'l Lexicon,
) -> Option<(usize, &'l Entry, &'d str)> {
    let first = doc.word(token);
    if !lex.starts_phrase(first) {
        return None;
    }
    // Word tokens after `token`, skipping the whitespace tokens jieba emits between them.
    let mut words = vec![token];
    let mut t = token + 1;
    while t < end && words.len() < MAX_PHRASE_WORDS {
        let w = doc.word(t);
        if w.trim().is_empty() {
            t += 1;
            continue;
        }
        if !w
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'\'' || b == b'-')
        {
            break;
        }
        words.push(t);
        t += 1;
    }
    for n in (2..=words.len()).rev() {
        let key: Vec<&str> = words[..n].iter().map(|&w| doc.word(w)).collect();
        if let Some(e) = lex.get(&key.join(" ")) {
            let (start, _) = doc.tokens[token];
            let (_, stop) = doc.tokens[words[n - 1]];
            return Some((words[n - 1] + 1, e, &doc.text[start..stop]));
        }
    }
    None
}

/// One scoring unit: a token, or a piece of a compound token.
enum Unit<'t, 'l> {
    Known(&'l Entry, &'t str),
    /// A sentiment word with a negation character glued in front (不好 → 不 + 好).
    Glued(&'l Entry, &'t str, char),
    Unknown(&'t str),
}

impl<'t> Unit<'t, '_> {
    fn word(&self) -> &'t str {
        match self {
            Unit::Known(_, w) | Unit::Glued(_, w, _) | Unit::Unknown(w) => w,
        }
    }
}

/// Resolves a token (with its lexicon `entry`, if any) into scoring units, appended to `out`.
/// jieba's dictionary holds compounds (获得好评, 非常满意) that would hide their sentiment word
/// from a plain lookup; an unknown token of three to [`MAX_COMPOUND_CHARS`] characters is
/// searched for lexicon terms of two or more characters (never single characters: 好 inside 好像
/// means nothing). Allocation-free: this runs for every token.
fn units<'t, 'l>(
    word: &'t str,
    entry: Option<&'l Entry>,
    lex: &'l Lexicon,
    out: &mut Vec<Unit<'t, 'l>>,
) {
    out.clear();
    if let Some(e) = entry {
        out.push(Unit::Known(e, word));
        return;
    }
    if word.is_ascii() || word.len() < 6 {
        // ASCII, or at most two CJK characters: nothing to decompose.
        out.push(Unit::Unknown(word));
        return;
    }
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        if GLUED_NEGATIONS.contains(&first) {
            let rest = chars.as_str();
            if let Some(e) = lex.get(rest).filter(|e| e.polarity != 0.0) {
                out.push(Unit::Glued(e, rest, first));
                return;
            }
        }
    }
    let mut starts = [0usize; MAX_COMPOUND_CHARS + 1];
    let mut begins_word = [false; MAX_COMPOUND_CHARS];
    let mut n = 0;
    for (i, c) in word.char_indices() {
        if n == MAX_COMPOUND_CHARS {
            out.push(Unit::Unknown(word));
            return;
        }
        starts[n] = i;
        begins_word[n] = lex.may_begin_word(c);
        n += 1;
    }
    starts[n] = word.len();
    if n < 3 {
        out.push(Unit::Unknown(word));
        return;
    }
    let mut i = 0;
    while i < n {
        if !begins_word[i] {
            i += 1;
            continue;
        }
        let found = (2..=MAX_INNER_CHARS.min(n - i)).rev().find_map(|len| {
            let piece = &word[starts[i]..starts[i + len]];
            lex.get(piece).map(|e| (e, piece, len))
        });
        match found {
            Some((e, piece, len)) => {
                out.push(Unit::Known(e, piece));
                i += len;
            }
            None => i += 1,
        }
    }
    if out.is_empty() {
        out.push(Unit::Unknown(word));
    }
}

/// How a clause ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    Plain,
    Exclamation(usize),
    Question,
}

/// Lexicon words at least this negative are looked for in the whole text
/// ([`TextNegatives`]). Weaker words and the positive ones added nothing in cross-validation
/// (entity-grouped F1 0.854 with every polar word, 0.856 with these; 0.846 with 2.0 and up).
pub const TEXT_NEGATIVE_MIN: f64 = 1.5;

/// The words [`TextNegatives`] looks for, in order of their mass (occurrences times lexicon
/// weight) in `finance_brand_train.csv`: the 64 heaviest of the lexicon's 413 Chinese words of
/// weight [`TEXT_NEGATIVE_MIN`] and more, which carry 92% of that mass. Entity-grouped F1 with
/// the first 16: 0.847, 32: 0.851, 64: 0.855, 100: 0.855, all 413: 0.856. The labels played no
/// part in the choice.
pub const TEXT_NEGATIVE_WORDS: [&str; 64] = [
    "诈骗",
    "涉嫌诈骗",
    "非法集资",
    "非法吸收公众存款",
    "经侦",
    "跑路",
    "非法",
    "爆雷",
    "骗局",
    "自融",
    "立案侦查",
    "非法放贷",
    "假标",
    "传销",
    "血汗钱",
    "暴雷",
    "集资诈骗",
    "高炮",
    "违法",
    "放高利贷",
    "黑恶势力",
    "挤兑",
    "砍头息",
    "失联",
    "虚假宣传",
    "违约",
    "虚构",
    "勾结",
    "被立案",
    "伪造",
    "庞氏骗局",
    "诈骗犯",
    "高利贷",
    "助纣为虐",
    "血本无归",
    "提现困难",
    "套路贷",
    "崩盘",
    "骗子",
    "黑社会",
    "欺诈",
    "逾期兑付",
    "无法提现",
    "狼狈为奸",
    "违法违规",
    "造假",
    "暴力催收",
    "资金链断裂",
    "清退",
    "逍遥法外",
    "挪用",
    "金融诈骗",
    "涉黑",
    "良性退出",
    "倒闭",
    "兑付危机",
    "黑平台",
    "为虎作伥",
    "恶劣",
    "高息",
    "破产",
    "骗子平台",
    "黑心",
    "转移资产",
];

/// The lexicon's heaviest negative words of a finance post ([`TEXT_NEGATIVE_WORDS`]), found
/// anywhere in a text without segmenting it: what the whole post says, beside what the
/// brand's window says.
///
/// A finance article often names the brand in a list or a passing sentence while its headline
/// or its last paragraph says 跑路 or 立案; such a brand is usually what the post is about, but
/// its window holds no negative word. Segmenting the whole article to look would cost the
/// analysis its speed (only the windows are segmented), so the raw text is searched instead. It
/// ignores negation and degree (which need segmented words), so it is evidence for the learned
/// model, not a score of its own.
///
/// The search rides on the pass that normalizes a post and plans its folding
/// ([`fold::normalize_for_matching`]), which looks at every ideograph anyway: it notes each
/// pair of characters that may begin one of the words, and only there are the words compared
/// ([`TextNegatives::confirm`]). Every search with a pass of its own cost the analysis 4–6% of
/// its throughput (BENCHMARKS.md), aho-corasick's too: its SIMD prefilter finds no rare byte in
/// Chinese text. [`TextNegatives::find`] does the same for a text on its own.
#[derive(Debug, Clone)]
pub struct TextNegatives {
    /// The words' first two characters, for [`fold::fold_watching`].
    pairs: fold::WatchedPairs,
    /// By their first two characters: the rest of each word and its magnitude, longest first.
    words: rustc_hash::FxHashMap<(char, char), Vec<(String, f64)>>,
}

impl TextNegatives {
    /// The words of [`TEXT_NEGATIVE_WORDS`] that `lexicon` holds as strongly negative (a
    /// custom lexicon may weigh them otherwise).
    pub fn new(lexicon: &Lexicon) -> TextNegatives {
        let mut words: rustc_hash::FxHashMap<(char, char), Vec<(String, f64)>> =
            rustc_hash::FxHashMap::default();
        for word in TEXT_NEGATIVE_WORDS {
            let Some(entry) = lexicon.get(word) else {
                continue;
            };
            if entry.polarity > -TEXT_NEGATIVE_MIN {
                continue;
            }
            let mut chars = word.chars();
            let (Some(a), Some(b)) = (chars.next(), chars.next()) else {
                continue;
            };
            words
                .entry((a, b))
                .or_default()
                .push((chars.as_str().to_string(), -entry.polarity));
        }
        for list in words.values_mut() {
            list.sort_by_key(|(rest, _)| std::cmp::Reverse(rest.len()));
        }
        TextNegatives {
            pairs: fold::WatchedPairs::new(words.keys().copied())
                .expect("TEXT_NEGATIVE_WORDS are common ideographs (tested)"),
            words,
        }
    }

    /// The words' first two characters, for [`fold::fold_watching`].
    pub fn pairs(&self) -> &fold::WatchedPairs {
        &self.pairs
    }

    /// The words of `text` (normalized), in order, as (byte offset, magnitude). At each place
    /// the longest word counts, and the search goes on after it (暴力催收 is one word, not 催收
    /// as well).
    pub fn find(&self, text: &str) -> Vec<(usize, f64)> {
        let mut candidates = Vec::new();
        fold::fold_watching(text, &self.pairs, &mut candidates);
        self.confirm(text, &candidates)
    }

    /// The words that begin at `candidates` (byte offsets, ascending, every word's beginning
    /// among them), leftmost and longest first, none overlapping.
    pub fn confirm(&self, text: &str, candidates: &[usize]) -> Vec<(usize, f64)> {
        let mut found = Vec::new();
        let mut searched_to = 0;
        for &at in candidates {
            if at < searched_to {
                continue;
            }
            if let Some((len, magnitude)) = self.word_at(&text[at..]) {
                found.push((at, magnitude));
                searched_to = at + len;
            }
        }
        found
    }

    /// The longest word that `text` begins with: its length in bytes and its magnitude.
    fn word_at(&self, text: &str) -> Option<(usize, f64)> {
        let mut chars = text.chars();
        let (a, b) = (chars.next()?, chars.next()?);
        let rest = chars.as_str();
        let list = self.words.get(&(a, b))?;
        let (tail, magnitude) = list
            .iter()
            .find(|(tail, _)| rest.starts_with(tail.as_str()))?;
        Some((text.len() - rest.len() + tail.len(), *magnitude))
    }

    /// [`Self::find`] reading every character: the reference it is tested against.
    #[cfg(test)]
    pub(crate) fn find_naively(&self, text: &str) -> Vec<(usize, f64)> {
        let every: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
        self.confirm(text, &every)
    }
}

/// How far a window reaches from a mention's clause: clauses back and forward within its
/// sentence, and clauses of the next sentence (see [`scope_weights`]).
pub const BEFORE: usize = 1;
pub const AFTER: usize = 2;
pub const NEXT: usize = 1;

/// Per-clause weights of the window around a target's mentions.
///
/// A mention's own clause weighs 1; the [`AFTER`] clauses after it in the same sentence (where
/// the predicate about a subject usually sits) weigh 0.8 and 0.6; the clause before it weighs
/// 0.5; when the sentence ends within that reach, the first clause of the next sentence weighs
/// 0.4 (a title naming the brand, then the complaint). The window stops at a clause that
/// mentions another known brand, since what follows that mention is about the other brand,
/// and at text that was not segmented. Further away, a long article is about other things:
/// a narrower window judged the brand as well (BENCHMARKS.md) and reads a third less text.
pub fn scope_weights(doc: &Doc, target_clauses: &[usize], other_clauses: &[usize]) -> Vec<f64> {
    let clauses = &doc.clauses;
    let mut w = vec![0.0f64; clauses.len()];
    let is_other = |c: usize| other_clauses.contains(&c) && !target_clauses.contains(&c);
    // Whether the window can step from clause `c - 1` on to clause `c`.
    let reaches = |c: usize| !clauses[c].after_gap && !is_other(c);
    for &c in target_clauses {
        let sentence = clauses[c].sentence;
        w[c] = 1.0;
        let mut next = c + 1;
        let mut d = 1;
        while next < clauses.len()
            && d <= AFTER
            && clauses[next].sentence == sentence
            && reaches(next)
        {
            w[next] = w[next].max((1.0 - 0.2 * d as f64).max(0.4));
            next += 1;
            d += 1;
        }
        // The next sentence, when this one ended within reach, unless it belongs to someone
        // else from its start.
        if next < clauses.len() && clauses[next].sentence == sentence + 1 && reaches(next) {
            let mut k = next;
            while k < clauses.len()
                && k - next < NEXT
                && clauses[k].sentence == sentence + 1
                && (k == next || reaches(k))
            {
                w[k] = w[k].max(0.4);
                k += 1;
            }
        }
        let mut prev = c;
        let mut d = 0;
        while d < BEFORE
            && prev > 0
            && !clauses[prev].after_gap
            && clauses[prev - 1].sentence == sentence
            && !is_other(prev - 1)
        {
            prev -= 1;
            d += 1;
            w[prev] = w[prev].max(if d == 1 { 0.5 } else { 0.3 });
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::super::tests::analyzer;
    use super::*;

    fn score(text: &str) -> f64 {
        analyzer().judge_text(text).score
    }

    fn about(text: &str, entity: &str) -> f64 {
        let a = analyzer();
        let target = a.matcher_for(entity);
        a.judge_target(text, &target)
            .expect("entity mentioned")
            .score
    }

    #[test]
    fn strong_negative_words_are_found_anywhere_in_the_text() {
        let lexicon = Lexicon::builtin().unwrap();
        let magnitude = |w: &str| -lexicon.entry_by_id(lexicon.id(w).unwrap()).polarity;
        assert!(magnitude("跑路") >= TEXT_NEGATIVE_MIN && magnitude("失联") >= TEXT_NEGATIVE_MIN);
        assert!(
            magnitude("催收") < TEXT_NEGATIVE_MIN,
            "a weak word, left out"
        );
        let negatives = TextNegatives::new(&lexicon);
        let text = "某某金服老板跑路了，又失联。今天周一";
        let at = |w: &str| text.find(w).unwrap();
        assert_eq!(
            negatives.find(text),
            vec![
                (at("跑路"), magnitude("跑路")),
                (at("失联"), magnitude("失联"))
            ]
        );
        // Words glued into longer ones count (跑路 in 跑路案), the longest match once
        // (暴力催收, not 催收 as well), and single characters and English never.
        assert_eq!(negatives.find("跑路案"), vec![(0, magnitude("跑路"))]);
        assert_eq!(negatives.find("暴力催收"), vec![(0, magnitude("暴力催收"))]);
        assert_eq!(negatives.find("坑，scam fraud"), vec![]);
    }

    /// The list is what `TextNegatives::new` relies on: words of the built-in lexicon, all
    /// strongly negative, of two or more common ideographs (the fold pass decodes only those).
    #[test]
    fn text_negative_words_are_strong_lexicon_words_of_ideographs() {
        let lexicon = Lexicon::builtin().unwrap();
        for word in TEXT_NEGATIVE_WORDS {
            let entry = lexicon
                .get(word)
                .unwrap_or_else(|| panic!("{word} is no lexicon word"));
            assert!(
                entry.polarity <= -TEXT_NEGATIVE_MIN,
                "{word}: {}",
                entry.polarity
            );
            assert!(word.chars().count() >= 2, "{word}");
            assert!(
                word.chars().all(|c| ('\u{4000}'..'\u{A000}').contains(&c)),
                "{word}"
            );
        }
        let negatives = TextNegatives::new(&lexicon);
        let kept: usize = negatives.words.values().map(Vec::len).sum();
        assert_eq!(kept, TEXT_NEGATIVE_WORDS.len());
        let mut unique = TEXT_NEGATIVE_WORDS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), TEXT_NEGATIVE_WORDS.len());
    }

    #[test]
    fn negation_flips_polarity() {
        assert!(score("好") > 0.0);
        assert!(score("不好") < 0.0);
        assert!(score("服务不好") < 0.0);
        assert!(
            score("服务很不好") < score("服务不好"),
            "degree strengthens"
        );
    }

    #[test]
    fn double_negation_is_positive() {
        assert!(score("不是不好") > 0.0, "{}", score("不是不好"));
    }

    #[test]
    fn negation_scope_ends_at_the_clause() {
        // 不 in the first clause must not reach 差 in the second.
        assert!(score("我不知道，服务太差") < 0.0);
    }

    #[test]
    fn degree_scales() {
        assert!(score("非常差") < score("差"));
        assert!(score("有点差") > score("差"));
    }

    #[test]
    fn contrast_weighs_the_second_clause() {
        assert!(score("放款很快，但是利息太坑") < 0.0);
        assert!(score("利息太坑，但是放款很快，服务很好") > 0.0);
    }

    #[test]
    fn exclamation_amplifies() {
        assert!(score("太坑了！") < score("太坑了"));
    }

    #[test]
    fn rhetorical_question_turns_praise() {
        assert!(score("这就是好服务") > 0.0);
        assert!(score("难道这就是好服务？") < 0.0);
    }

    #[test]
    fn emoticons_and_emoji_count() {
        assert!(score("今天又接到电话[怒]") < 0.0);
        assert!(score("到账了[哈哈]") > 0.0);
        assert!(score("客服😡😡") < 0.0);
        assert!(score("👍") > 0.0);
    }

    #[test]
    fn english_negation_and_intensifiers() {
        assert!(score("the service is good") > 0.0);
        assert!(score("the service is not good") < 0.0);
        assert!(score("the app doesn't work and support is terrible") < 0.0);
        assert!(score("extremely bad") < score("bad"));
    }

    #[test]
    fn english_phrases_span_tokens() {
        assert!(score("they charge hidden fees") < 0.0);
        let j = analyzer().judge_text("a data breach at the lender");
        assert!(
            j.terms().iter().any(|t| t == "data breach"),
            "{:?}",
            j.terms()
        );
    }

    #[test]
    fn sentiment_inside_compound_tokens() {
        // jieba keeps 获得好评 as one dictionary word.
        assert!(score("获得好评") > 0.0);
        assert_eq!(
            score("好像"),
            0.0,
            "single characters are not dug out of words"
        );
    }

    #[test]
    fn plain_ideographs_are_only_what_no_rule_reads() {
        for plain in ["的", "公司", "财报"] {
            assert!(is_plain_ideographs(plain), "{plain}");
        }
        // The comparative marker, glued negations, compounds, ASCII and symbols take the
        // general path.
        for other in ["比", "不好", "没用", "获得好评", "app", "🙂", "，"] {
            assert!(!is_plain_ideographs(other), "{other}");
        }
        let lex = Lexicon::builtin().unwrap();
        assert!(lex.may_begin_word('好'), "好评 begins with it");
        assert!(
            !lex.may_begin_word('\u{4E02}'),
            "a rare ideograph begins no word"
        );
    }

    #[test]
    fn comparative_goes_to_the_right_side() {
        assert!(about("度小满比招联差", "度小满") < 0.0);
        assert!(about("招联比度小满差", "度小满") >= 0.0);
    }

    #[test]
    fn negative_goes_to_the_entity_it_is_about() {
        let text = "某某贷平台涉嫌非法集资被立案，投资人血本无归。度小满发布了新的助学公益计划，获得好评。";
        assert!(about(text, "某某贷") < 0.0);
        assert!(about(text, "度小满") > 0.0);
    }

    #[test]
    fn another_brand_closes_the_window() {
        let text = "度小满放款很快，招联暴力催收";
        let a = analyzer();
        let judged = a.analyze_with(text, &["度小满", "招联"]);
        assert!(judged[0].1.score >= 0.0, "{:?}", judged[0]);
        assert!(judged[1].1.score < 0.0, "{:?}", judged[1]);
    }

    #[test]
    fn the_window_reaches_a_few_clauses() {
        assert!(about("度小满发布公告,内容很长,服务差", "度小满") < 0.0);
        assert_eq!(
            about("度小满发布公告,内容很长,还有附件,服务差", "度小满"),
            0.0,
            "three clauses on is beyond the window"
        );
        assert!(about("服务差,度小满发布公告", "度小满") < 0.0);
        assert_eq!(about("服务差,内容很长,度小满发布公告", "度小满"), 0.0);
        // The next sentence counts when the brand's sentence ends within reach.
        assert!(about("度小满发布公告。服务差。", "度小满") < 0.0);
        assert!(about("度小满发布公告,内容很长,还有附件。服务差。", "度小满") < 0.0);
        assert_eq!(
            about(
                "度小满发布公告,内容很长,还有附件,再说一句。服务差。",
                "度小满"
            ),
            0.0
        );
        assert_eq!(about("度小满发布公告。内容很长,服务差。", "度小满"), 0.0);
    }

    #[test]
    fn english_complaint_patterns() {
        for text in [
            "skyjet still waiting for my refund",
            "no one at skyjet answers",
            "skyjet is the worst",
            "skyjet cancelled my flight",
            "skyjet lost my bag",
            "on hold for two hours with skyjet",
            "thanks for nothing skyjet",
            "not impressed with skyjet",
            "so disappointed in skyjet",
            "skyjet still hasn't called back",
            "skyjet charged me twice",
        ] {
            assert!(
                about(text, "skyjet") < 0.0,
                "{text}: {}",
                about(text, "skyjet")
            );
        }
        // Negation and praise phrases the other way.
        for text in [
            "no complaints, skyjet did everything right",
            "skyjet was not bad at all",
        ] {
            assert!(
                about(text, "skyjet") > 0.0,
                "{text}: {}",
                about(text, "skyjet")
            );
        }
        // An intensifier strengthens the complaint.
        assert!(about("skyjet was really rude", "skyjet") < about("skyjet was rude", "skyjet"));
    }
}
