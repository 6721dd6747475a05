//! Learned weights: a linear model over words around the target, next to the hand lexicons.
//!
//! The hand rules know Chinese (negation, contrast, degree); the learned weights know a domain
//! (what 清退, 立案 or 兑付 mean for a lender, and which words mark news that merely lists the
//! brand). The model is L2-regularised logistic regression over binary features of the text
//! as seen from the target, plus the rule score itself as one feature, so the two combine
//! rather than compete.
//!
//! Features (the target's mention is the token `<E>`). About a target, the model reads the
//! clauses of the target's window, as the rules do, and the word features only the words
//! within [`NEAR`] tokens of a mention: what a long sentence says further away is mostly about
//! something else (5-fold CV F1 0.8937 this way when windows were whole sentences, against
//! 0.8889 over all their words).
//! - every token the hand lexicons do not score (`清退`), and every bigram inside a clause
//!   (`暴力_催收`, and `<E>_回应` with the mention itself);
//! - structure, over every word of the window's clauses: how often and where the target
//!   appears, and how far the nearest negative lexicon word is (`s:ecnt=2`,
//!   `s:e_first_clause`, `s:e_pos=0`, `s:negdist=1`, `s:no_neg`);
//! - the mention's context, which describes how the brand stands to what is said rather than
//!   which brand it is ([`MentionContext`], `s:ctx=subject`);
//! - `lex:score`, the hand-rule score (a real value, not 0/1);
//! - `s:general`, about a target only: the general model's log-odds for the target's window
//!   (a real value; see [`Shape::General`]).
//!
//! The entity's own name is deliberately not a feature: in training data it identifies the
//! companies of that data set (and their base rates), which says nothing about the brands a
//! user configures. Measured cost: about 0.01 F1 in cross-validation. For the same reason the
//! words left and right of a mention and in its clause are no longer features of their own
//! (`wl:`, `wr:`, `c:` until issue 15): they learned the training companies' usual contexts.
//! Without them, entity-grouped cross-validation (brands never seen in training) rose from
//! F1 0.832 to 0.839, and text-grouped fell from 0.889 to 0.882 (BENCHMARKS.md).
//!
//! The file (`lexicons/learned.tsv`) is plain `feature<TAB>weight`, strongest first, so a person
//! can read why the model thinks what it thinks, and edit or delete a line.

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use rustc_hash::FxHashMap;

use super::Doc;

/// Tokens either side of a mention whose words a judgment about it reads (see
/// [`visit_features`]).
pub const NEAR: usize = 12;
/// The feature carrying the hand-rule score.
pub const RULE_FEATURE: &str = "lex:score";
/// The rule score is clipped to this magnitude before it enters the model.
const RULE_CLIP: f64 = 10.0;
/// The feature carrying the general model's verdict on a brand's window ([`Shape::General`]).
pub const GENERAL_FEATURE: &str = "s:general";
/// The general model's log-odds are clipped to this magnitude before they enter the brand
/// model: beyond it the probability is within 1e-4 of certain.
const GENERAL_CLIP: f64 = 10.0;
const BIAS_KEY: &str = "__bias__";
const TARGETED_KEY: &str = "__targeted__";
/// The token that stands for the target's mention.
pub const TARGET: &str = "<E>";

/// The word-based feature families. Their names are `word` and `a_b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Unigram,
    Bigram,
}

/// Prefixes of the positional word families that models before issue 15 held; such a file is
/// refused rather than read with those weights silently ignored.
const RETIRED_PREFIXES: [&str; 3] = ["wl:", "wr:", "c:"];

/// Buckets of [`Shape::Mentions`] and [`Shape::NegativeDistance`]: a bucket is named by its
/// lower edge.
const MENTION_EDGES: [usize; 6] = [0, 1, 2, 3, 5, 10];
const DISTANCE_EDGES: [usize; 6] = [0, 1, 3, 6, 11, 21];
/// [`Shape::Position`] counts in fifths.
const POSITIONS: usize = 5;

/// The features that are not words: how the text stands around the target, and the hand-rule
/// score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// How often the target is mentioned, bucketed: `s:ecnt=2`.
    Mentions(usize),
    /// The target is in the first clause read: `s:e_first_clause`.
    FirstClause,
    /// Where the first mention stands among the words read, in fifths: `s:e_pos=0`.
    Position(usize),
    /// No negative lexicon word is read: `s:no_neg`.
    NoNegative,
    /// Words from a mention to the nearest negative lexicon word, bucketed: `s:negdist=1`.
    NegativeDistance(usize),
    /// What a mention stands in, whatever the brand: see [`MentionContext`]. `s:ctx=neg_same_clause`.
    Context(MentionContext),
    /// About a target, how much more negative the whole post is than the target's window:
    /// ln(1 + the text's mass) − ln(1 + the window's), where a mass sums the magnitudes of
    /// the strongly negative lexicon words found, segmented or not
    /// ([`super::sentiment::TextNegatives`]): `s:text_neg`. A brand named in a list or in
    /// passing is often what a negative article is about (entity-grouped CV F1 0.835 → 0.856).
    /// It is zero when the window holds the whole text, so short posts are judged as before,
    /// and the window's own words still speak through the rules.
    TextNegative,
    /// The hand-rule score, a real value: `lex:score`.
    RuleScore,
    /// The general model's log-odds that the brand's window is negative, whatever it is about
    /// (`lexicons/general.tsv`), a real value: `s:general`. Brand-agnostic evidence: a sad or
    /// angry window without a lexicon word still reads as negative to a model trained on
    /// 94,000 general posts and reviews.
    General,
}

/// How a mention relates to what is said around it. These describe the relation, not the
/// company, so they carry over to a brand the model has never seen (word features learn the
/// training set's companies too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MentionContext {
    /// A negative lexicon word stands in a mention's own clause.
    NegativeSameClause,
    /// A negative lexicon word follows a mention in its clause (where the predicate about a
    /// subject sits: 度小满真坑).
    NegativeAfter,
    /// A mention opens its clause: the brand is the subject.
    Subject,
    /// A mention is followed within a few words by a reply verb (度小满回应/否认/澄清): a company
    /// answering an accusation, which is news about a complaint rather than a complaint.
    Responds,
    /// A mention is an item of a list (度小满、京东金融、360借条等): news round-ups name many
    /// companies and say little of each.
    InList,
    /// A mention is the start of a longer organisation name (度小满(北京)科技有限公司).
    InName,
}

impl MentionContext {
    const ALL: [MentionContext; 6] = [
        MentionContext::NegativeSameClause,
        MentionContext::NegativeAfter,
        MentionContext::Subject,
        MentionContext::Responds,
        MentionContext::InList,
        MentionContext::InName,
    ];

    fn name(self) -> &'static str {
        match self {
            MentionContext::NegativeSameClause => "neg_same_clause",
            MentionContext::NegativeAfter => "neg_after",
            MentionContext::Subject => "subject",
            MentionContext::Responds => "responds",
            MentionContext::InList => "in_list",
            MentionContext::InName => "in_name",
        }
    }
}

/// Words that make a company's mention an answer to an accusation ([`MentionContext::Responds`]).
const REPLY_WORDS: &[&str] = &[
    "回应", "否认", "澄清", "辟谣", "声明", "回复", "致歉", "道歉", "表示", "称", "发布", "公告",
];
/// How many words after a mention a reply verb may stand.
const REPLY_REACH: usize = 3;
/// Words that continue a name into an organisation's full name ([`MentionContext::InName`]).
const NAME_SUFFIXES: &[&str] = &[
    "(",
    "公司",
    "有限公司",
    "集团",
    "股份",
    "控股",
    "科技",
    "分公司",
    "支行",
    "分行",
    "有限",
];
/// Words that close a list of companies ([`MentionContext::InList`]).
const LIST_WORDS: &[&str] = &["等", "等等"];

impl Shape {
    const COUNT: usize = MENTION_EDGES.len()
        + 1
        + POSITIONS
        + 1
        + DISTANCE_EDGES.len()
        + MentionContext::ALL.len()
        + 3;

    fn all() -> impl Iterator<Item = Shape> {
        MENTION_EDGES
            .iter()
            .map(|&e| Shape::Mentions(e))
            .chain([Shape::FirstClause])
            .chain((0..POSITIONS).map(Shape::Position))
            .chain([Shape::NoNegative])
            .chain(DISTANCE_EDGES.iter().map(|&e| Shape::NegativeDistance(e)))
            .chain(MentionContext::ALL.iter().map(|&c| Shape::Context(c)))
            .chain([Shape::TextNegative, Shape::RuleScore, Shape::General])
    }

    /// The shape of a feature name (`s:no_neg`), if it is one.
    fn named(name: &str) -> Option<Shape> {
        Shape::all().find(|s| s.name() == name)
    }

    /// Its place in [`LearnedModel::shapes`].
    fn slot(self) -> usize {
        let edge = |edges: &[usize], e| edges.iter().position(|&x| x == e).unwrap_or(0);
        let m = MENTION_EDGES.len();
        match self {
            Shape::Mentions(e) => edge(&MENTION_EDGES, e),
            Shape::FirstClause => m,
            Shape::Position(p) => m + 1 + p.min(POSITIONS - 1),
            Shape::NoNegative => m + 1 + POSITIONS,
            Shape::NegativeDistance(e) => m + 2 + POSITIONS + edge(&DISTANCE_EDGES, e),
            Shape::Context(c) => {
                m + 2
                    + POSITIONS
                    + DISTANCE_EDGES.len()
                    + MentionContext::ALL
                        .iter()
                        .position(|&x| x == c)
                        .unwrap_or(0)
            }
            Shape::TextNegative => Shape::COUNT - 3,
            Shape::RuleScore => Shape::COUNT - 2,
            Shape::General => Shape::COUNT - 1,
        }
    }

    fn name(self) -> String {
        match self {
            Shape::Mentions(e) => format!("s:ecnt={e}"),
            Shape::FirstClause => "s:e_first_clause".into(),
            Shape::Position(p) => format!("s:e_pos={p}"),
            Shape::NoNegative => "s:no_neg".into(),
            Shape::NegativeDistance(e) => format!("s:negdist={e}"),
            Shape::Context(c) => format!("s:ctx={}", c.name()),
            Shape::TextNegative => "s:text_neg".into(),
            Shape::RuleScore => RULE_FEATURE.into(),
            Shape::General => GENERAL_FEATURE.into(),
        }
    }
}

/// Receives the features of one document. The traversal in [`visit_features`] is shared by
/// training (which needs names) and scoring (which needs speed), so the two can never
/// disagree about what a feature is.
pub trait FeatureSink<'d> {
    /// A word as the sink wants to hold it; resolved once per token.
    type Word: Copy;
    /// The word of `doc`'s token `token`.
    fn intern(&mut self, doc: &'d Doc, token: usize) -> Self::Word;
    /// The target's mention, [`TARGET`].
    fn target(&mut self) -> Self::Word;
    fn word(&mut self, word: Self::Word);
    fn bigram(&mut self, a: Self::Word, b: Self::Word);
    fn shape(&mut self, shape: Shape, value: f64);
}

/// What the model knows of one word, in one piece so that a token costs one memory access:
/// its id, its weight as a word (0 when the model has no such feature: a zero weight adds
/// nothing, so the two are the same), and the range of its bigrams in
/// `LearnedModel::successors`.
///
/// The analyzer copies it into its word table ([`super::Known`]), so the lookup that finds a
/// token's lexicon entry brings its model weights too, and scoring reads them from the
/// document in order. Weights sit here, not behind a feature index, because each indirection
/// is a cache miss: a document reads a few hundred features at random, while jieba's
/// dictionary competes for the same cache. For the same reason they are `f32`: the file holds
/// six decimals, which `f32` keeps to within 1e-7.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelWord {
    id: u32,
    weight: f32,
    bigrams: (u32, u32),
}

const _: () = assert!(std::mem::size_of::<ModelWord>() == 16);

/// A learned linear model, laid out for scoring by integer codes.
///
/// Held compactly, because every analyzer loads two of them (the brand model and the general
/// one) with tens of thousands of weights each: each word is stored once, in one string arena,
/// weights are `f32` inside the scoring tables, and no feature name is kept. Names are rebuilt
/// from the words when a person or the file needs them (explanations, `to_tsv`, `weight`).
/// Before issue 15's general model, names, display terms, a name index and a word index were
/// each kept as strings: about 250 bytes per weight (BENCHMARKS.md, "Memory of the analyzer").
///
/// Scoring names a fired feature by its code: the word id for word features, then one code
/// per bigram (its place in `successors`), then one per [`Shape`].
/// Codes need no lookup of their own (the word id is already known), and they are dense, so a
/// bitset over them deduplicates a document's features. A feature whose weight is zero is no
/// feature (it would add nothing), which is how a word without a unigram weight is marked.
#[derive(Debug, Clone)]
pub struct LearnedModel {
    /// Every word that occurs in a word-based feature, back to back.
    arena: String,
    /// Where each word (by id) ends in `arena`; it starts where the previous one ends.
    ends: Vec<u32>,
    /// Word ids in the order of their words, for lookups by name (never on the scoring path).
    sorted: Vec<u32>,
    /// By word id.
    by_word: Vec<ModelWord>,
    /// Bigrams as (second word id, weight), grouped by first word (see
    /// [`ModelWord::bigrams`]: the groups follow word ids) and sorted by second word.
    successors: Vec<(u32, f32)>,
    /// The first word of each bigram in `successors`, for explanations (a binary search over
    /// `by_word` for each named bigram cost more than these 4 bytes a bigram).
    firsts: Vec<u32>,
    /// A bit per word id: the word is shown as itself in explanations (no `_` to drop, not
    /// the target, not a structural name), so [`LearnedModel::term`] needs no string checks.
    plain: Vec<u64>,
    /// The id of [`TARGET`], if a feature names it.
    target_id: Option<u32>,
    /// The features of [`TARGET`], looked up once rather than for every post.
    target_word: Option<ModelWord>,
    /// Weight of each [`Shape`] by [`Shape::slot`]; `None` when the model lacks it.
    shapes: [Option<f64>; Shape::COUNT],
    /// How many features have a weight.
    features: usize,
    /// Added to every score. Stored with the decision offset folded in (see `yuqing learn`).
    pub bias: f64,
    /// Trained on judgments about a named entity (true) or on whole texts (false). A model is
    /// only applied to the kind of judgment it learned: brand-targeted weights know nothing of
    /// texts without a brand, and the reverse.
    pub targeted: bool,
}

/// Splits a feature name into its family and words; `None` for named features.
fn classify(name: &str) -> Option<(Family, &str, Option<&str>)> {
    if name.starts_with("s:") || name.starts_with("lex:") {
        return None;
    }
    // A bigram joins two tokens with '_'. jieba never glues '_' to other characters, so a '_'
    // inside a token only happens when the token is "_" itself.
    let split = if let Some(rest) = name.strip_prefix("__") {
        Some(("_", rest))
    } else {
        name.char_indices()
            .skip(1)
            .find(|&(_, c)| c == '_')
            .map(|(i, _)| (&name[..i], &name[i + 1..]))
    };
    match split {
        Some((a, b)) if !b.is_empty() => Some((Family::Bigram, a, Some(b))),
        _ => Some((Family::Unigram, name, None)),
    }
}

/// Gathers features while a model is read or built. Words are interned by names borrowed from
/// the source (the file's text), so loading copies each word once, into the arena, and the
/// temporary index is freed when the model is built.
#[derive(Default)]
struct Builder<'a> {
    ids: FxHashMap<&'a str, u32>,
    arena: String,
    ends: Vec<u32>,
    /// (word, weight), in the order given: a later weight replaces an earlier one.
    one: Vec<(u32, f32)>,
    /// (first word, second word, weight), in the order given.
    bigrams: Vec<(u32, u32, f32)>,
    shapes: [Option<f64>; Shape::COUNT],
}

impl<'a> Builder<'a> {
    fn word(&mut self, word: &'a str) -> u32 {
        if let Some(&id) = self.ids.get(word) {
            return id;
        }
        let id = self.ends.len() as u32;
        self.arena.push_str(word);
        self.ends.push(self.arena.len() as u32);
        self.ids.insert(word, id);
        id
    }

    /// Adds one feature; false for a named feature that no [`Shape`] has.
    fn add(&mut self, name: &'a str, weight: f64) -> bool {
        match classify(name) {
            None => match Shape::named(name) {
                Some(shape) => self.shapes[shape.slot()] = Some(weight),
                None => return false,
            },
            Some((_, a, None)) => {
                let a = self.word(a);
                self.one.push((a, weight as f32));
            }
            Some((_, a, Some(b))) => {
                let (a, b) = (self.word(a), self.word(b));
                self.bigrams.push((a, b, weight as f32));
            }
        }
        true
    }

    fn build(mut self, bias: f64, targeted: bool) -> LearnedModel {
        let n = self.ends.len();
        let mut by_word: Vec<ModelWord> = (0..n as u32)
            .map(|id| ModelWord {
                id,
                ..ModelWord::default()
            })
            .collect();
        for &(w, weight) in &self.one {
            by_word[w as usize].weight = weight;
        }
        // Stable: of equal pairs, the last is the latest given.
        self.bigrams.sort_by_key(|&(a, b, _)| (a, b));
        let mut successors: Vec<(u32, f32)> = Vec::with_capacity(self.bigrams.len());
        let mut firsts: Vec<u32> = Vec::with_capacity(self.bigrams.len());
        let mut groups = self.bigrams.chunk_by(|x, y| x.0 == y.0).peekable();
        for (id, word) in by_word.iter_mut().enumerate() {
            let start = successors.len() as u32;
            if let Some(group) = groups.next_if(|g| g[0].0 as usize == id) {
                for same in group.chunk_by(|x, y| x.1 == y.1) {
                    let (_, b, weight) = same[same.len() - 1];
                    if weight != 0.0 {
                        successors.push((b, weight));
                        firsts.push(id as u32);
                    }
                }
            }
            // Every word gets a range, empty or not: the ranges follow word ids.
            word.bigrams = (start, successors.len() as u32);
        }
        successors.shrink_to_fit();
        firsts.shrink_to_fit();
        for shape in self.shapes.iter_mut() {
            *shape = shape.filter(|&w| w != 0.0);
        }
        let features = by_word.iter().filter(|w| w.weight != 0.0).count()
            + successors.len()
            + self.shapes.iter().flatten().count();
        let target_id = self.ids.get(TARGET).copied();
        let target_word = target_id.map(|id| by_word[id as usize]);
        drop(self.ids);
        self.arena.shrink_to_fit();
        let mut model = LearnedModel {
            arena: self.arena,
            ends: self.ends,
            sorted: Vec::new(),
            by_word,
            successors,
            firsts,
            plain: Vec::new(),
            target_id,
            target_word,
            shapes: self.shapes,
            features,
            bias,
            targeted,
        };
        let mut sorted: Vec<u32> = (0..n as u32).collect();
        sorted.sort_unstable_by(|&a, &b| model.word(a).cmp(model.word(b)));
        model.sorted = sorted;
        let mut plain = vec![0u64; n.div_ceil(64)];
        for id in 0..n as u32 {
            let w = model.word(id);
            if !w.contains('_') && !w.contains(TARGET) && !w.starts_with("s:") {
                plain[id as usize / 64] |= 1 << (id % 64);
            }
        }
        model.plain = plain;
        model
    }
}

/// Writes weights as the file `yuqing learn` ships: a header (`#` lines), whether the model is
/// brand-targeted, the bias, then features by decreasing |weight| (ties by name).
pub fn write_tsv(header: &str, targeted: bool, bias: f64, pairs: &[(String, f64)]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "{TARGETED_KEY}\t{}", u8::from(targeted));
    let _ = writeln!(out, "{BIAS_KEY}\t{bias:.6}");
    let mut order: Vec<&(String, f64)> = pairs.iter().collect();
    order.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    for (name, weight) in order {
        let _ = writeln!(out, "{name}\t{weight:.6}");
    }
    out
}

impl LearnedModel {
    /// A model of `pairs` (a later weight for the same name replaces an earlier one; named
    /// features that no [`Shape`] has are left out).
    pub fn from_weights(
        pairs: impl IntoIterator<Item = (String, f64)>,
        bias: f64,
        targeted: bool,
    ) -> LearnedModel {
        let pairs: Vec<(String, f64)> = pairs.into_iter().collect();
        let mut builder = Builder::default();
        for (name, weight) in &pairs {
            builder.add(name, *weight);
        }
        builder.build(bias, targeted)
    }

    /// How many features have a weight.
    pub fn len(&self) -> usize {
        self.features
    }

    pub fn is_empty(&self) -> bool {
        self.features == 0
    }

    /// How many distinct words the features name.
    pub fn word_count(&self) -> usize {
        self.by_word.len()
    }

    fn word(&self, id: u32) -> &str {
        let end = self.ends[id as usize] as usize;
        let start = match id {
            0 => 0,
            _ => self.ends[id as usize - 1] as usize,
        };
        &self.arena[start..end]
    }

    fn id_of(&self, word: &str) -> Option<u32> {
        self.sorted
            .binary_search_by(|&id| self.word(id).cmp(word))
            .ok()
            .map(|i| self.sorted[i])
    }

    /// Every word the model's features name, with what the model knows of it.
    pub fn words(&self) -> impl Iterator<Item = (&str, ModelWord)> {
        self.by_word.iter().map(|w| (self.word(w.id), *w))
    }

    pub fn weight(&self, feature: &str) -> Option<f64> {
        let weight = match classify(feature) {
            None => return Shape::named(feature).and_then(|s| self.shapes[s.slot()]),
            Some((_, a, None)) => self.by_word[self.id_of(a)? as usize].weight,
            Some((_, a, Some(b))) => {
                let (a, b) = (self.id_of(a)?, self.id_of(b)?);
                let (start, end) = self.by_word[a as usize].bigrams;
                let next = &self.successors[start as usize..end as usize];
                let k = next.binary_search_by_key(&b, |&(w, _)| w).ok()?;
                next[k].1
            }
        };
        (weight != 0.0).then_some(f64::from(weight))
    }

    /// The name and weight of the feature behind `code` (see [`LearnedModel::score`]).
    fn feature(&self, code: u32) -> (String, f64) {
        let code = code as usize;
        let words = self.by_word.len();
        if code < words {
            let w = &self.by_word[code];
            return (self.word(w.id).to_string(), f64::from(w.weight));
        }
        let k = code - words;
        if k < self.successors.len() {
            let (second, weight) = self.successors[k];
            let name = format!("{}_{}", self.word(self.firsts[k]), self.word(second));
            return (name, f64::from(weight));
        }
        let slot = k - self.successors.len();
        match Shape::all().find(|s| s.slot() == slot) {
            Some(shape) => (shape.name(), self.shapes[slot].unwrap_or(0.0)),
            None => (String::new(), 0.0),
        }
    }

    /// How an explanation names the feature fired as `code` (see [`LearnedModel::score`]): the
    /// word for word features ([`display_term`]), the feature name otherwise.
    pub fn term(&self, code: u32) -> String {
        // Every judgment names a dozen features: built straight from the words, not through
        // the feature name (about 6% of the analysis instructions that way).
        let (code, words) = (code as usize, self.by_word.len());
        // Words that `display_term` shows as they are (see `plain`); the rest (rare) go the
        // long way.
        let plain = |id: u32| self.plain[id as usize / 64] >> (id % 64) & 1 == 1;
        let target = |id: u32| Some(id) == self.target_id;
        if code < words {
            if plain(code as u32) {
                return self.word(code as u32).to_string();
            }
        } else if code - words < self.successors.len() {
            let k = code - words;
            let (a, b) = (self.firsts[k], self.successors[k].0);
            if (plain(a) || target(a)) && (plain(b) || target(b)) {
                // With the target the term is the feature's name (`<E>_回应`), else the words.
                let joint = if target(a) || target(b) { "_" } else { "" };
                return [self.word(a), joint, self.word(b)].concat();
            }
        } else {
            return SHAPE_NAMES.with(|names| names[code - words - self.successors.len()].clone());
        }
        let (name, _) = self.feature(code as u32);
        display_term(&name).unwrap_or(name)
    }

    /// The code of a shape's feature.
    fn shape_code(&self, shape: Shape) -> u32 {
        (self.by_word.len() + self.successors.len() + shape.slot()) as u32
    }

    /// Parses the TSV; every malformed line is an error naming `origin` and the line.
    pub fn parse(text: &str, origin: &str) -> Result<LearnedModel> {
        let mut builder = Builder::default();
        // Sized for every line at once: growing by doubling would leave the smaller copies
        // behind as garbage at load time, when the peak is reached.
        let lines = text.lines().count();
        builder.ids.reserve(lines);
        builder.arena.reserve(text.len() / 2);
        builder.ends.reserve(lines);
        builder.one.reserve(lines / 2);
        builder.bigrams.reserve(lines);
        let (mut bias, mut targeted) = (None, true);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, weight) = line.rsplit_once('\t').with_context(|| {
                format!(
                    "{origin}:{}: expected feature<TAB>weight, got {line:?}",
                    i + 1
                )
            })?;
            let weight: f64 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite())
                .with_context(|| {
                    format!("{origin}:{}: weight {weight:?} is not a number", i + 1)
                })?;
            if name.is_empty() {
                bail!("{origin}:{}: empty feature name", i + 1);
            }
            if let Some(prefix) = RETIRED_PREFIXES.iter().find(|p| name.starts_with(*p)) {
                bail!(
                    "{origin}:{}: feature {name:?}: {prefix} features are no longer used (they \
                     memorised the training companies); write the file again with `yuqing learn`",
                    i + 1
                );
            }
            if name == BIAS_KEY {
                bias = Some(weight);
            } else if name == TARGETED_KEY {
                targeted = weight != 0.0;
            } else if !builder.add(name, weight) {
                bail!(
                    "{origin}:{}: unknown feature {name:?} (s: and lex: names are structural \
                     features this version does not have)",
                    i + 1
                );
            }
        }
        let Some(bias) = bias else {
            bail!("{origin}: no {BIAS_KEY} line: not a learned weights file");
        };
        Ok(builder.build(bias, targeted))
    }

    /// The file: a header (`#` lines), the bias, then features by decreasing |weight|.
    pub fn to_tsv(&self, header: &str) -> String {
        let codes = self.by_word.len() + self.successors.len() + Shape::COUNT;
        let pairs: Vec<(String, f64)> = (0..codes as u32)
            .map(|code| self.feature(code))
            .filter(|(_, w)| *w != 0.0)
            .collect();
        write_tsv(header, self.targeted, self.bias, &pairs)
    }

    /// Makes `seen` (the [`SEEN`] bits) long enough for this model's codes. It only grows: the
    /// two models of an analyzer share it, and shrinking it for the smaller one would zero the
    /// larger one's bits again on every judgment (a measured 2% of the instructions).
    fn fit_seen(&self, seen: &mut Vec<u64>) {
        let words = (self.by_word.len() + self.successors.len() + Shape::COUNT).div_ceil(64);
        if seen.len() < words {
            seen.resize(words, 0);
        }
    }

    /// The code of the rule-score feature, if the model has one.
    pub fn rule_code(&self) -> Option<u32> {
        self.shapes[Shape::RuleScore.slot()].map(|_| self.shape_code(Shape::RuleScore))
    }

    /// The model's verdict on a document about a target: the log-odds that it is negative
    /// about the target, and the features that fired (code, weight × value), unordered.
    /// `column` says where the document's tokens carry this model's words; `general` is the
    /// general model's log-odds for the same window ([`Shape::General`]), when there is one.
    #[allow(clippy::too_many_arguments)]
    pub fn score(
        &self,
        doc: &Doc,
        column: Column,
        target_tokens: &[usize],
        negatives: &[usize],
        window: Option<&[f64]>,
        rule_score: f64,
        general: Option<f64>,
    ) -> (f64, Vec<(u32, f64)>) {
        let mut seen = SEEN.take();
        self.fit_seen(&mut seen);
        let mut sink = ScoringSink {
            model: self,
            column,
            // A finance article's window fires a couple of hundred features: no regrowing.
            fired: Vec::with_capacity(256),
            seen,
        };
        visit_features(
            doc,
            target_tokens,
            negatives,
            window,
            rule_score,
            general,
            &mut sink,
        );
        let ScoringSink {
            fired, mut seen, ..
        } = sink;
        for &(code, _) in &fired {
            seen[code as usize / 64] = 0;
        }
        SEEN.set(seen);
        let z = fired.iter().fold(self.bias, |z, &(_, part)| z + part);
        (z, fired)
    }
}

impl LearnedModel {
    /// The log-odds of a whole-text model for the clauses of `window`, read as one text: what
    /// [`LearnedModel::score`] gives with no target, in one pass over the tokens. Every brand
    /// judgment asks this of the general model ([`Shape::General`]); the general traversal
    /// cost about 11% of the analysis throughput there, this one a fraction of it. A test
    /// checks that the two agree.
    pub fn window_log_odds(
        &self,
        doc: &Doc,
        column: Column,
        negatives: &[usize],
        window: &[f64],
        rule_score: f64,
    ) -> f64 {
        self.score_whole(doc, column, negatives, Some(window), rule_score)
            .0
    }

    /// [`LearnedModel::score`] with no target (a whole text, or a window read as one): the
    /// log-odds and the features fired, in one pass over the tokens (see
    /// [`LearnedModel::window_log_odds`]).
    pub fn score_whole(
        &self,
        doc: &Doc,
        column: Column,
        negatives: &[usize],
        window: Option<&[f64]>,
        rule_score: f64,
    ) -> (f64, Vec<(u32, f64)>) {
        let mut seen = SEEN.take();
        self.fit_seen(&mut seen);
        let mut fired: Vec<(u32, f64)> = Vec::with_capacity(64);
        let mut z = self.bias;
        let mut fire = |code: u32, part: f64, z: &mut f64| {
            let (word, bit) = (code as usize / 64, 1u64 << (code % 64));
            if seen[word] & bit == 0 {
                seen[word] |= bit;
                fired.push((code, part));
                *z += part;
            }
        };
        let mut any_negative = false;
        let mut next_negative = 0;
        for (ci, clause) in doc.clauses.iter().enumerate() {
            if window.is_some_and(|w| w[ci] <= 0.0) {
                continue;
            }
            // The previous word of this clause: bigrams never cross a clause.
            let mut previous: Option<&ModelWord> = None;
            for t in clause.start..clause.end {
                if doc.kinds[t] == super::text::TokenKind::Filler {
                    continue;
                }
                while negatives.get(next_negative).is_some_and(|&x| x < t) {
                    next_negative += 1;
                }
                any_negative |= negatives.get(next_negative) == Some(&t);
                let known = &doc.known[t];
                let word = match column {
                    Column::Brand => known.model.as_ref(),
                    Column::General => known.general.as_ref(),
                };
                if let Some(w) = word {
                    if known.sign == 0 && w.weight != 0.0 {
                        fire(w.id, f64::from(w.weight), &mut z);
                    }
                    if let Some(a) = previous {
                        let (start, end) = a.bigrams;
                        let next = &self.successors[start as usize..end as usize];
                        if let Ok(k) = next.binary_search_by_key(&w.id, |&(b, _)| b) {
                            let code = self.by_word.len() + start as usize + k;
                            fire(code as u32, f64::from(next[k].1), &mut z);
                        }
                    }
                }
                previous = word;
            }
        }
        let mut shape = |shape: Shape, value: f64, z: &mut f64| {
            if let Some(weight) = self.shapes[shape.slot()] {
                fire(self.shape_code(shape), weight * value, z);
            }
        };
        shape(Shape::Mentions(0), 1.0, &mut z);
        if !any_negative {
            shape(Shape::NoNegative, 1.0, &mut z);
        }
        shape(
            Shape::RuleScore,
            rule_score.clamp(-RULE_CLIP, RULE_CLIP),
            &mut z,
        );
        for &(code, _) in &fired {
            seen[code as usize / 64] = 0;
        }
        SEEN.set(seen);
        (z, fired)
    }
}

thread_local! {
    /// Each [`Shape`]'s name by slot, for explanations: built once, not for every judgment.
    static SHAPE_NAMES: Vec<String> = {
        let mut names = vec![String::new(); Shape::COUNT];
        for shape in Shape::all() {
            names[shape.slot()] = shape.name();
        }
        names
    };

    /// The fired-feature bits of [`LearnedModel::score`], kept between calls (all zero in
    /// between): clearing the few words that were set is much cheaper than zeroing a bit per
    /// model feature for every post.
    static SEEN: std::cell::Cell<Vec<u64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Which of a token's [`super::Known`] model entries a model reads: the analyzer holds two
/// models, and looks each token up once for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `Known::model`: the brand model (`learned.tsv`).
    Brand,
    /// `Known::general`: the general model (`general.tsv`).
    General,
}

/// Scoring: words are what the document looked up with its tokens.
struct ScoringSink<'m> {
    model: &'m LearnedModel,
    column: Column,
    /// (code, weight × value) of each feature fired.
    fired: Vec<(u32, f64)>,
    /// A bit per code: fired already.
    seen: Vec<u64>,
}

impl<'d> FeatureSink<'d> for ScoringSink<'d> {
    type Word = Option<&'d ModelWord>;

    fn intern(&mut self, doc: &'d Doc, token: usize) -> Option<&'d ModelWord> {
        let known = &doc.known[token];
        match self.column {
            Column::Brand => known.model.as_ref(),
            Column::General => known.general.as_ref(),
        }
    }

    fn target(&mut self) -> Option<&'d ModelWord> {
        self.model.target_word.as_ref()
    }

    fn word(&mut self, word: Option<&'d ModelWord>) {
        if let Some(w) = word {
            if w.weight != 0.0 {
                self.fire(w.id, f64::from(w.weight));
            }
        }
    }

    fn bigram(&mut self, a: Option<&'d ModelWord>, b: Option<&'d ModelWord>) {
        if let (Some(a), Some(b)) = (a, b) {
            let (start, end) = a.bigrams;
            let next = &self.model.successors[start as usize..end as usize];
            if let Ok(k) = next.binary_search_by_key(&b.id, |&(w, _)| w) {
                let code = self.model.by_word.len() + start as usize + k;
                self.fire(code as u32, f64::from(next[k].1));
            }
        }
    }

    fn shape(&mut self, shape: Shape, value: f64) {
        if let Some(weight) = self.model.shapes[shape.slot()] {
            self.fire(self.model.shape_code(shape), weight * value);
        }
    }
}

impl ScoringSink<'_> {
    /// Binary features count once however often they fire.
    fn fire(&mut self, code: u32, part: f64) {
        let (word, bit) = (code as usize / 64, 1u64 << (code % 64));
        if self.seen[word] & bit == 0 {
            self.seen[word] |= bit;
            self.fired.push((code, part));
        }
    }
}

/// Training: every feature by name.
struct NamingSink<'e> {
    emit: &'e mut dyn FnMut(&str, f64),
    buf: String,
}

impl<'d> FeatureSink<'d> for NamingSink<'_> {
    type Word = &'d str;

    fn intern(&mut self, doc: &'d Doc, token: usize) -> &'d str {
        doc.word(token)
    }

    fn target(&mut self) -> &'d str {
        TARGET
    }

    fn word(&mut self, word: &'d str) {
        (self.emit)(word, 1.0);
    }

    fn bigram(&mut self, a: &'d str, b: &'d str) {
        self.buf.clear();
        self.buf.push_str(a);
        self.buf.push('_');
        self.buf.push_str(b);
        (self.emit)(&self.buf, 1.0);
    }

    fn shape(&mut self, shape: Shape, value: f64) {
        (self.emit)(&shape.name(), value);
    }
}

/// A feature name as a person reads it in an explanation: the word (`暴力_催收` → 暴力催收).
/// `None` for structural features, which are not words.
pub fn display_term(feature: &str) -> Option<String> {
    if feature.starts_with("s:") || feature.starts_with("lex:") || feature.contains(TARGET) {
        return None;
    }
    let word = feature;
    Some(if word.contains('_') {
        word.replace('_', "")
    } else {
        word.to_string()
    })
}

/// The lower edge of the bucket that `n` falls in.
fn bucket(n: usize, edges: &[usize]) -> usize {
    edges.iter().rev().copied().find(|&e| n >= e).unwrap_or(0)
}

/// Calls `emit(name, value)` for every feature of `doc` seen from the target at
/// `target_tokens` (empty for a whole-text judgment); `negatives` are the tokens where the
/// rules found something negative (sorted). Names repeat when a feature fires more than once;
/// callers deduplicate.
pub fn for_each_feature(
    doc: &Doc,
    target_tokens: &[usize],
    negatives: &[usize],
    window: Option<&[f64]>,
    rule_score: f64,
    general: Option<f64>,
    emit: &mut dyn FnMut(&str, f64),
) {
    let mut sink = NamingSink {
        emit,
        buf: String::with_capacity(32),
    };
    visit_features(
        doc,
        target_tokens,
        negatives,
        window,
        rule_score,
        general,
        &mut sink,
    );
}

/// Token ranges (half-open, sorted) whose words a judgment about the target at
/// `mention_tokens` (sorted) reads: [`NEAR`] tokens either side of each mention, within the run
/// of window clauses (`runs`, token spans in order) that holds it. Ranges of one run that meet are merged; ranges never join across
/// runs, whose tokens are not neighbours in the text.
fn near_ranges(mention_tokens: &[usize], runs: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(mention_tokens.len());
    let mut last_run = None;
    let mut run = 0;
    for &m in mention_tokens {
        while runs.get(run).is_some_and(|&(_, end)| end <= m) {
            run += 1;
        }
        let Some(&(first, end)) = runs.get(run).filter(|&&(first, _)| first <= m) else {
            continue;
        };
        let (start, end) = (m.saturating_sub(NEAR).max(first), (m + NEAR + 1).min(end));
        match ranges.last_mut() {
            Some(last) if last_run == Some(run) && start <= last.1 => last.1 = last.1.max(end),
            _ => ranges.push((start, end)),
        }
        last_run = Some(run);
    }
    ranges
}

/// The one definition of the model's features (see the module docs).
///
/// With `window` (per-clause weights of the target's window), only the weighted clauses are
/// read, as for the rules: what an article says far from the brand does not decide what it
/// says about the brand. About a target, the word features come from the words near its
/// mentions (`near_ranges`); the structural features count every word read.
///
/// The negative words of the structural features are the tokens in `negatives` (sorted): where
/// the rules scored something negative. That covers what a lookup of single tokens misses
/// (English phrases such as `on hold`, negated praise, compounds), so `s:no_neg` never says
/// "nothing negative" about a text the rules found negative.
pub fn visit_features<'d, S: FeatureSink<'d>>(
    doc: &'d Doc,
    target_tokens: &[usize],
    negatives: &[usize],
    window: Option<&[f64]>,
    rule_score: f64,
    general: Option<f64>,
    sink: &mut S,
) {
    let reads = |ci: usize| window.is_none_or(|w| w[ci] > 0.0);
    // The runs of clauses read, as token spans: neighbouring clauses, no skipped text between.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut last_read = None;
    for (ci, clause) in doc.clauses.iter().enumerate() {
        if !reads(ci) {
            continue;
        }
        match runs.last_mut() {
            Some(run) if ci > 0 && last_read == Some(ci - 1) && !clause.after_gap => {
                run.1 = clause.end;
            }
            _ => runs.push((clause.start, clause.end)),
        }
        last_read = Some(ci);
    }
    // A whole-text judgment has no target: every word is near.
    let near = near_ranges(target_tokens, &runs);
    let everything_near = target_tokens.is_empty();
    // The near words in reading order, filler dropped. A segment is one near range: words of
    // two ranges are never neighbours.
    #[derive(Clone, Copy)]
    struct Item<W> {
        clause: u32,
        segment: u32,
        word: W,
    }
    let target_word = sink.target();
    let mut flat: Vec<Item<S::Word>> = Vec::with_capacity(if everything_near {
        doc.tokens.len()
    } else {
        near.len() * (2 * NEAR + 1)
    });
    // Every word read, near or not, by its place among them: for the structural features.
    let mut words_read = 0;
    let mut first_clause = None;
    let mut target_words: Vec<(usize, u32)> = Vec::new();
    let mut negative_words: Vec<(usize, u32)> = Vec::new();
    // Each mention read: its token and clause.
    let mut mentions_read: Vec<(usize, usize)> = Vec::new();
    // `target_tokens`, `near` and the tokens walked are all in order: cursors find them.
    let mut next_target = 0;
    let mut next_negative = 0;
    let mut range = 0;
    for (ci, clause) in doc.clauses.iter().enumerate() {
        if !reads(ci) {
            continue;
        }
        let ci = ci as u32;
        for t in clause.start..clause.end {
            if doc.kinds[t] == super::text::TokenKind::Filler {
                continue;
            }
            let word_index = words_read;
            words_read += 1;
            first_clause.get_or_insert(ci);
            while target_tokens.get(next_target).is_some_and(|&x| x < t) {
                next_target += 1;
            }
            let is_target = target_tokens.get(next_target) == Some(&t);
            while negatives.get(next_negative).is_some_and(|&x| x < t) {
                next_negative += 1;
            }
            let sign = doc.known[t].sign;
            if is_target {
                target_words.push((word_index, ci));
                mentions_read.push((t, ci as usize));
            } else if negatives.get(next_negative) == Some(&t) {
                negative_words.push((word_index, ci));
            }
            while near.get(range).is_some_and(|&(_, end)| end <= t) {
                range += 1;
            }
            if !everything_near && near.get(range).is_none_or(|&(start, _)| start > t) {
                continue;
            }
            let segment = range as u32;
            if is_target {
                flat.push(Item {
                    clause: ci,
                    segment,
                    word: target_word,
                });
                continue;
            }
            let word = sink.intern(doc, t);
            // Sentiment words of the hand lexicons speak through the rule score (which knows
            // negation and degree); the model learns only what the lists do not know.
            if sign == 0 {
                sink.word(word);
            }
            flat.push(Item {
                clause: ci,
                segment,
                word,
            });
        }
    }
    let together = |a: &Item<S::Word>, b: &Item<S::Word>| a.segment == b.segment;
    for pair in flat.windows(2) {
        if pair[0].clause == pair[1].clause && together(&pair[0], &pair[1]) {
            sink.bigram(pair[0].word, pair[1].word);
        }
    }
    // Structure.
    sink.shape(
        Shape::Mentions(bucket(target_words.len(), &MENTION_EDGES)),
        1.0,
    );
    if let Some(&(first, clause)) = target_words.first() {
        if Some(clause) == first_clause {
            sink.shape(Shape::FirstClause, 1.0);
        }
        sink.shape(
            Shape::Position((POSITIONS * first / words_read).min(POSITIONS - 1)),
            1.0,
        );
    }
    let nearest_negative = negative_words
        .iter()
        .flat_map(|&(n, _)| target_words.iter().map(move |&(t, _)| t.abs_diff(n)))
        .min();
    if negative_words.is_empty() {
        sink.shape(Shape::NoNegative, 1.0);
    } else if let Some(nearest) = nearest_negative {
        sink.shape(
            Shape::NegativeDistance(bucket(nearest, &DISTANCE_EDGES)),
            1.0,
        );
    }
    for context in mention_contexts(doc, &mentions_read, &target_words, &negative_words) {
        sink.shape(Shape::Context(context), 1.0);
    }
    // About a target only: a whole text's words are all read already, and the general
    // model (`general.tsv`) keeps the features it was learned with.
    if !everything_near {
        let read: Vec<(usize, usize)> = runs
            .iter()
            .map(|&(first, end)| (doc.tokens[first].0, doc.tokens[end - 1].1))
            .collect();
        let in_window = |at: usize| read.iter().any(|&(s, e)| s <= at && at < e);
        let text: f64 = doc.text_negatives.iter().map(|w| w.1).sum();
        let window: f64 = doc
            .text_negatives
            .iter()
            .filter(|w| in_window(w.0))
            .map(|w| w.1)
            .sum();
        sink.shape(Shape::TextNegative, text.ln_1p() - window.ln_1p());
    }
    sink.shape(Shape::RuleScore, rule_score.clamp(-RULE_CLIP, RULE_CLIP));
    if let Some(z) = general {
        sink.shape(Shape::General, z.clamp(-GENERAL_CLIP, GENERAL_CLIP));
    }
}

/// The [`MentionContext`]s of a judgment's mentions (`mentions`: token and clause of each mention
/// read), given every mention and negative lexicon word read as (place among the words read,
/// clause).
fn mention_contexts(
    doc: &Doc,
    mentions: &[(usize, usize)],
    target_words: &[(usize, u32)],
    negative_words: &[(usize, u32)],
) -> impl Iterator<Item = MentionContext> {
    let mut found = [false; MentionContext::ALL.len()];
    let mut set = |c: MentionContext| {
        found[MentionContext::ALL
            .iter()
            .position(|&x| x == c)
            .unwrap_or(0)] = true
    };
    for &(n, nc) in negative_words {
        for &(t, tc) in target_words {
            if nc == tc {
                set(MentionContext::NegativeSameClause);
                if n > t {
                    set(MentionContext::NegativeAfter);
                }
            }
        }
    }
    let word = |t: usize| doc.kinds[t] != super::text::TokenKind::Filler;
    for &(t, ci) in mentions {
        let clause = &doc.clauses[ci];
        if (clause.start..clause.end).find(|&x| word(x)) == Some(t) {
            set(MentionContext::Subject);
        }
        let mut after = (t + 1..clause.end)
            .filter(|&x| word(x))
            .map(|x| doc.word(x));
        let following: Vec<&str> = after.by_ref().take(REPLY_REACH).collect();
        if following.iter().any(|w| REPLY_WORDS.contains(w)) {
            set(MentionContext::Responds);
        }
        // `(` is filler, so the very next token is read, not the next word.
        if t + 1 < clause.end && NAME_SUFFIXES.contains(&doc.word(t + 1)) {
            set(MentionContext::InName);
        }
        let listed_by = |b: usize| b < doc.tokens.len() && doc.word(b) == "、";
        if listed_by(clause.end)
            || (clause.start > 0 && listed_by(clause.start - 1))
            || following.iter().take(2).any(|w| LIST_WORDS.contains(w))
        {
            set(MentionContext::InList);
        }
    }
    MentionContext::ALL
        .into_iter()
        .zip(found)
        .filter_map(|(c, on)| on.then_some(c))
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Inverse regularisation strength, as in liblinear: larger fits the data more closely.
    pub c: f64,
    pub iterations: usize,
    /// Weights smaller than this are dropped from the written file.
    pub prune_below: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            c: 0.3,
            iterations: 600,
            prune_below: 0.02,
        }
    }
}

/// One training row: feature ids with values, and whether it is negative.
#[derive(Debug, Clone)]
pub struct Row {
    pub features: Vec<(u32, f64)>,
    pub negative: bool,
    /// Judged about a named entity (rather than as a whole text).
    pub targeted: bool,
    /// How much the row counts in training: 1 for labelled data, more for a staff verdict
    /// (`yuqing learn --feedback`), which speaks for this customer's own brand.
    pub weight: f64,
}

/// Feature names ↔ ids while building a training set.
#[derive(Debug, Default)]
pub struct Vocabulary {
    ids: FxHashMap<String, u32>,
    pub names: Vec<String>,
}

impl Vocabulary {
    /// The features of one example as a deduplicated row.
    pub fn row(&mut self, emit_all: impl FnOnce(&mut dyn FnMut(&str, f64)), negative: bool) -> Row {
        let mut features: Vec<(u32, f64)> = Vec::new();
        emit_all(&mut |name: &str, value: f64| {
            let id = match self.ids.get(name) {
                Some(&id) => id,
                None => {
                    let id = self.names.len() as u32;
                    self.ids.insert(name.to_string(), id);
                    self.names.push(name.to_string());
                    id
                }
            };
            features.push((id, value));
        });
        features.sort_unstable_by_key(|&(id, _)| id);
        features.dedup_by_key(|&mut (id, _)| id);
        Row {
            features,
            negative,
            targeted: false,
            weight: 1.0,
        }
    }
}

/// Fits L2-regularised logistic regression, minimising
/// ½‖w‖² + C·Σ log(1 + exp(−yᵢ(w·xᵢ + b))) (the bias is not regularised),
/// by full-batch gradient descent with per-coordinate AdaGrad steps: deterministic, and
/// sparse features with few occurrences still move.
pub fn train(rows: &[&Row], n_features: usize, opts: &TrainOptions) -> (Vec<f64>, f64) {
    let mut w = vec![0.0f64; n_features];
    let mut b = 0.0f64;
    let mut g2 = vec![1e-8f64; n_features];
    let mut g2b = 1e-8f64;
    let mut grad = vec![0.0f64; n_features];
    let rate = 0.5;
    for _ in 0..opts.iterations {
        for (gj, wj) in grad.iter_mut().zip(&w) {
            *gj = wj / opts.c;
        }
        let mut gb = 0.0;
        for row in rows {
            let z: f64 = b + row
                .features
                .iter()
                .map(|&(j, v)| w[j as usize] * v)
                .sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let residual = row.weight * (p - if row.negative { 1.0 } else { 0.0 });
            gb += residual;
            for &(j, v) in &row.features {
                grad[j as usize] += residual * v;
            }
        }
        for j in 0..n_features {
            g2[j] += grad[j] * grad[j];
            w[j] -= rate * grad[j] / g2[j].sqrt();
        }
        g2b += gb * gb;
        b -= rate * gb / g2b.sqrt();
    }
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_round_trip_and_errors() {
        let m = LearnedModel::from_weights(
            vec![("立案".to_string(), 1.25), ("好评".to_string(), -0.5)],
            0.75,
            false,
        );
        let text = m.to_tsv("trained on a fixture\nsecond line");
        assert!(
            text.starts_with(
                "# trained on a fixture\n# second line\n__targeted__\t0\n__bias__\t0.750000\n立案\t1.250000\n"
            ),
            "{text}"
        );
        let back = LearnedModel::parse(&text, "learned.tsv").unwrap();
        assert_eq!(back.bias, 0.75);
        assert!(!back.targeted);
        assert_eq!(back.weight("好评"), Some(-0.5));
        let err = LearnedModel::parse("__bias__\t0\n好\tabc\n", "x.tsv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.tsv:2"), "{err}");
        assert!(LearnedModel::parse("好\t1\n", "x.tsv")
            .unwrap_err()
            .to_string()
            .contains("__bias__"));
        // A file from before issue 15 names its positional features: refused, with the way out.
        let err = LearnedModel::parse("__bias__\t0\n好\t1\nwr:立案\t1\n", "old.tsv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("old.tsv:3") && err.contains("wr:立案") && err.contains("yuqing learn"),
            "{err}"
        );
    }

    #[test]
    fn feature_names_classify() {
        assert_eq!(
            classify("暴力_催收"),
            Some((Family::Bigram, "暴力", Some("催收")))
        );
        assert_eq!(classify("__好"), Some((Family::Bigram, "_", Some("好"))));
        assert_eq!(classify("好_"), Some((Family::Unigram, "好_", None)));
        assert_eq!(classify("s:no_neg"), None);
        let m = LearnedModel::from_weights(
            vec![
                ("暴力_催收".into(), 1.0),
                ("跑路".into(), 0.5),
                ("s:no_neg".into(), -1.0),
            ],
            0.0,
            true,
        );
        assert_eq!(m.weight("暴力_催收"), Some(1.0));
        assert_eq!(m.weight("跑路"), Some(0.5));
        assert_eq!(m.weight("s:no_neg"), Some(-1.0));
        assert_eq!(m.weight("催收"), None);
    }

    #[test]
    fn shapes_have_their_own_slots_and_names() {
        let shapes: Vec<Shape> = Shape::all().collect();
        assert_eq!(shapes.len(), Shape::COUNT);
        let mut slots: Vec<usize> = shapes.iter().map(|s| s.slot()).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..Shape::COUNT).collect::<Vec<_>>());
        for shape in shapes {
            assert_eq!(
                classify(&shape.name()),
                None,
                "{shape:?} is not a word feature"
            );
        }
        let m = LearnedModel::from_weights(
            vec![("s:negdist=6".into(), 0.5), (RULE_FEATURE.into(), -1.0)],
            0.0,
            true,
        );
        assert_eq!(m.shapes[Shape::NegativeDistance(6).slot()], Some(0.5));
        let rule = m.rule_code().unwrap();
        assert_eq!(m.term(rule), RULE_FEATURE);
        assert_eq!(
            m.term(m.shape_code(Shape::NegativeDistance(6))),
            "s:negdist=6"
        );
        assert_eq!(m.shapes[Shape::NoNegative.slot()], None);
    }

    #[test]
    fn bigrams_are_found_by_both_words() {
        let m = LearnedModel::from_weights(
            vec![
                ("暴力_催收".into(), 1.0),
                ("暴力_执法".into(), 2.0),
                ("催收_暴力".into(), 3.0),
                ("暴力_催收".into(), 4.0),
            ],
            0.0,
            true,
        );
        assert_eq!(m.len(), 3, "a repeated name replaces the earlier weight");
        assert_eq!(m.weight("暴力_催收"), Some(4.0));
        let id = |w: &str| m.id_of(w).unwrap();
        let (start, end) = m.by_word[id("暴力") as usize].bigrams;
        let next: Vec<u32> = m.successors[start as usize..end as usize]
            .iter()
            .map(|&(w, _)| w)
            .collect();
        assert_eq!(next.len(), 2);
        assert!(
            next.windows(2).all(|p| p[0] < p[1]),
            "sorted for binary search"
        );
        assert!(next.contains(&id("催收")) && next.contains(&id("执法")));
    }

    #[test]
    fn terms_are_the_display_terms_of_the_names() {
        let m = LearnedModel::from_weights(
            [
                "立案",
                "暴力_催收",
                "<E>_回应",
                "__好",
                "_",
                "s:no_neg",
                RULE_FEATURE,
                GENERAL_FEATURE,
            ]
            .iter()
            .map(|n| (n.to_string(), 1.0)),
            0.0,
            true,
        );
        let codes = m.by_word.len() + m.successors.len() + Shape::COUNT;
        let mut named = 0;
        for code in 0..codes as u32 {
            let (name, weight) = m.feature(code);
            if weight == 0.0 {
                continue;
            }
            named += 1;
            assert_eq!(
                m.term(code),
                display_term(&name).unwrap_or(name.clone()),
                "{name}"
            );
        }
        assert_eq!(named, 8);
    }

    #[test]
    fn display_terms() {
        assert_eq!(display_term("立案").as_deref(), Some("立案"));
        assert_eq!(display_term("暴力_催收").as_deref(), Some("暴力催收"));
        assert_eq!(display_term("s:no_neg"), None);
        assert_eq!(display_term("<E>_被"), None);
    }

    #[test]
    fn a_heavier_row_outweighs_lighter_ones_that_disagree() {
        // Feature 0 is negative in two rows and not in one; weighted 5, the one wins.
        let row = |negative, weight| Row {
            features: vec![(0, 1.0)],
            negative,
            targeted: true,
            weight,
        };
        let opts = TrainOptions::default();
        let plain = [row(true, 1.0), row(true, 1.0), row(false, 1.0)];
        let (w, b) = train(&plain.iter().collect::<Vec<_>>(), 1, &opts);
        assert!(w[0] + b > 0.0, "unweighted, the majority says negative");
        let weighed = [row(true, 1.0), row(true, 1.0), row(false, 5.0)];
        let (w, b) = train(&weighed.iter().collect::<Vec<_>>(), 1, &opts);
        assert!(w[0] + b < 0.0, "the weighted verdict wins: {} {}", w[0], b);
    }

    #[test]
    fn training_separates_a_toy_problem() {
        // Feature 0 marks negatives, feature 1 positives, feature 2 is noise on both.
        let rows: Vec<Row> = (0..40)
            .map(|i| Row {
                features: vec![(if i % 2 == 0 { 0 } else { 1 }, 1.0), (2, 1.0)],
                negative: i % 2 == 0,
                targeted: false,
                weight: 1.0,
            })
            .collect();
        let (w, _) = train(
            &rows.iter().collect::<Vec<_>>(),
            3,
            &TrainOptions::default(),
        );
        assert!(w[0] > 1.0 && w[1] < -1.0, "{w:?}");
        assert!(w[2].abs() < 0.5, "{w:?}");
    }
}
