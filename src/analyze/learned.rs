//! Learned weights: a linear model over words around the target, next to the hand lexicons.
//!
//! The hand rules know Chinese (negation, contrast, degree); the learned weights know a domain
//! (what 清退, 立案 or 兑付 mean for a lender, and which words mark news that merely lists the
//! brand). The model is L2-regularised logistic regression over binary features of the text
//! as seen from the target, plus the rule score itself as one feature, so the two combine
//! rather than compete.
//!
//! Features (the target's mention is the token `<E>`):
//! - every token the hand lexicons do not score (`清退`), and every bigram inside a clause
//!   (`暴力_催收`);
//! - tokens up to [`WINDOW`] places left and right of a mention (`wl:被`, `wr:立案`);
//! - tokens of the clauses that hold a mention (`c:跑路`);
//! - structure: how often and where the target appears, and how far the nearest negative
//!   lexicon word is (`s:ecnt=2`, `s:e_first_clause`, `s:e_pos=0`, `s:negdist=1`, `s:no_neg`);
//! - `lex:score`, the hand-rule score (a real value, not 0/1).
//!
//! The entity's own name is deliberately not a feature: in training data it identifies the
//! companies of that data set (and their base rates), which says nothing about the brands a
//! user configures. Measured cost: about 0.01 F1 in cross-validation.
//!
//! The file (`lexicons/learned.tsv`) is plain `feature<TAB>weight`, strongest first, so a person
//! can read why the model thinks what it thinks, and edit or delete a line.

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use rustc_hash::FxHashMap;

use super::lexicon::Lexicon;
use super::Doc;

/// Tokens either side of a mention that count as its window.
pub const WINDOW: usize = 10;
/// The feature carrying the hand-rule score.
pub const RULE_FEATURE: &str = "lex:score";
/// The rule score is clipped to this magnitude before it enters the model.
const RULE_CLIP: f64 = 10.0;
const BIAS_KEY: &str = "__bias__";
const TARGET: &str = "<E>";

/// A learned linear model: weights by feature name.
#[derive(Debug, Clone, Default)]
pub struct LearnedModel {
    ids: FxHashMap<String, u32>,
    names: Vec<String>,
    weights: Vec<f64>,
    /// Added to every score. Stored with the decision offset folded in (see [`LearnedModel::to_tsv`]).
    pub bias: f64,
}

impl LearnedModel {
    pub fn from_weights(pairs: impl IntoIterator<Item = (String, f64)>, bias: f64) -> LearnedModel {
        let mut m = LearnedModel {
            bias,
            ..Default::default()
        };
        for (name, w) in pairs {
            m.insert(name, w);
        }
        m
    }

    fn insert(&mut self, name: String, weight: f64) {
        match self.ids.get(&name) {
            Some(&id) => self.weights[id as usize] = weight,
            None => {
                self.ids.insert(name.clone(), self.names.len() as u32);
                self.names.push(name);
                self.weights.push(weight);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn weight(&self, feature: &str) -> Option<f64> {
        self.ids.get(feature).map(|&i| self.weights[i as usize])
    }

    fn id(&self, feature: &str) -> Option<u32> {
        self.ids.get(feature).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Parses the TSV; every malformed line is an error naming `origin` and the line.
    pub fn parse(text: &str, origin: &str) -> Result<LearnedModel> {
        let mut model = LearnedModel::default();
        let mut saw_bias = false;
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
            if name == BIAS_KEY {
                model.bias = weight;
                saw_bias = true;
            } else {
                model.insert(name.to_string(), weight);
            }
        }
        if !saw_bias {
            bail!("{origin}: no {BIAS_KEY} line: not a learned weights file");
        }
        Ok(model)
    }

    /// The file: a header (`#` lines), the bias, then features by decreasing |weight|.
    pub fn to_tsv(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "{BIAS_KEY}\t{:.6}", self.bias);
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| {
            self.weights[b]
                .abs()
                .total_cmp(&self.weights[a].abs())
                .then(self.names[a].cmp(&self.names[b]))
        });
        for i in order {
            let _ = writeln!(out, "{}\t{:.6}", self.names[i], self.weights[i]);
        }
        out
    }

    /// The model's verdict on a document about a target: the log-odds that it is negative
    /// about the target, and the features that fired (id, weight × value), strongest first.
    pub fn score(
        &self,
        doc: &Doc,
        target_tokens: &[usize],
        lex: &Lexicon,
        rule_score: f64,
    ) -> (f64, Vec<(u32, f64)>) {
        let mut fired: Vec<(u32, f64)> = Vec::new();
        for_each_feature(doc, target_tokens, lex, rule_score, |name, value| {
            if let Some(id) = self.id(name) {
                fired.push((id, value));
            }
        });
        // Binary features count once however often they fire.
        fired.sort_unstable_by_key(|&(id, _)| id);
        fired.dedup_by_key(|&mut (id, _)| id);
        let mut z = self.bias;
        let mut parts: Vec<(u32, f64)> = fired
            .into_iter()
            .map(|(id, value)| {
                let part = self.weights[id as usize] * value;
                z += part;
                (id, part)
            })
            .filter(|&(_, part)| part != 0.0)
            .collect();
        parts.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        (z, parts)
    }
}

/// A feature name as a person reads it in an explanation: the word, without its prefix
/// (`wl:立案` → 立案, `暴力_催收` → 暴力催收). `None` for structural features, which are not words.
pub fn display_term(feature: &str) -> Option<String> {
    if feature.starts_with("s:") || feature.starts_with("lex:") || feature.contains(TARGET) {
        return None;
    }
    let word = ["wl:", "wr:", "c:"]
        .iter()
        .find_map(|p| feature.strip_prefix(p))
        .unwrap_or(feature);
    Some(word.replace('_', ""))
}

fn bucket(n: usize, edges: &[usize]) -> usize {
    edges.iter().rev().copied().find(|&e| n >= e).unwrap_or(0)
}

/// Calls `emit(name, value)` for every feature of `doc` seen from the target at
/// `target_tokens` (empty for a whole-text judgment). Names repeat when a feature fires more
/// than once; callers deduplicate. One buffer is reused for every name.
pub fn for_each_feature(
    doc: &Doc,
    target_tokens: &[usize],
    lex: &Lexicon,
    rule_score: f64,
    mut emit: impl FnMut(&str, f64),
) {
    // The words in reading order, boundaries and filler dropped, with their clause.
    let mut flat: Vec<(&str, usize)> = Vec::with_capacity(doc.tokens.len());
    let mut target_at: Vec<usize> = Vec::new();
    for (ci, clause) in doc.clauses.iter().enumerate() {
        for t in clause.start..clause.end {
            let word = doc.word(t);
            if super::text::is_filler(word) {
                continue;
            }
            if target_tokens.binary_search(&t).is_ok() {
                target_at.push(flat.len());
                flat.push((TARGET, ci));
            } else {
                flat.push((word, ci));
            }
        }
    }
    let mut buf = String::with_capacity(32);
    let named = |buf: &mut String, prefix: &str, word: &str, emit: &mut dyn FnMut(&str, f64)| {
        buf.clear();
        buf.push_str(prefix);
        buf.push_str(word);
        emit(buf.as_str(), 1.0);
    };
    let emit: &mut dyn FnMut(&str, f64) = &mut emit;

    for (i, &(word, clause)) in flat.iter().enumerate() {
        // Sentiment words of the hand lexicons speak through the rule score (which knows
        // negation and degree); the model learns only what the lists do not know.
        if !lex.get(word).is_some_and(|e| e.polarity != 0.0) {
            emit(word, 1.0);
        }
        if let Some(&(next, next_clause)) = flat.get(i + 1) {
            if next_clause == clause {
                buf.clear();
                buf.push_str(word);
                buf.push('_');
                buf.push_str(next);
                emit(&buf, 1.0);
            }
        }
    }

    let mut target_clauses: Vec<usize> = target_at.iter().map(|&i| flat[i].1).collect();
    target_clauses.dedup();
    for &p in &target_at {
        for &(word, _) in &flat[p.saturating_sub(WINDOW)..p] {
            if word != TARGET {
                named(&mut buf, "wl:", word, emit);
            }
        }
        for &(word, _) in flat.iter().skip(p + 1).take(WINDOW) {
            if word != TARGET {
                named(&mut buf, "wr:", word, emit);
            }
        }
    }
    if !target_clauses.is_empty() {
        for &(word, clause) in &flat {
            if word != TARGET && target_clauses.contains(&clause) {
                named(&mut buf, "c:", word, emit);
            }
        }
    }

    // Structure.
    let count = target_at.len();
    buf.clear();
    let _ = write!(buf, "s:ecnt={}", bucket(count, &[0, 1, 2, 3, 5, 10]));
    emit(&buf, 1.0);
    if let Some(&first) = target_at.first() {
        if flat[first].1 == flat.first().map_or(usize::MAX, |f| f.1) {
            emit("s:e_first_clause", 1.0);
        }
        buf.clear();
        let _ = write!(buf, "s:e_pos={}", (5 * first / flat.len().max(1)).min(4));
        emit(&buf, 1.0);
    }
    let negative_at: Vec<usize> = flat
        .iter()
        .enumerate()
        .filter(|(_, (w, _))| lex.get(w).is_some_and(|e| e.polarity < 0.0))
        .map(|(i, _)| i)
        .collect();
    if negative_at.is_empty() {
        emit("s:no_neg", 1.0);
    } else if !target_at.is_empty() {
        let nearest = target_at
            .iter()
            .flat_map(|&t| negative_at.iter().map(move |&n| t.abs_diff(n)))
            .min()
            .unwrap_or(usize::MAX);
        buf.clear();
        let _ = write!(buf, "s:negdist={}", bucket(nearest, &[0, 1, 3, 6, 11, 21]));
        emit(&buf, 1.0);
    }
    emit(RULE_FEATURE, rule_score.clamp(-RULE_CLIP, RULE_CLIP));
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
        Row { features, negative }
    }
}

/// Fits L2-regularised logistic regression, minimising
/// ½‖w‖² + C·Σ log(1 + exp(−yᵢ(w·xᵢ + b))) (the bias is not regularised),
/// by full-batch gradient descent with per-coordinate AdaGrad steps: deterministic, and
/// sparse features with few occurrences still move.
pub fn train(rows: &[Row], n_features: usize, opts: &TrainOptions) -> (Vec<f64>, f64) {
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
            let residual = p - if row.negative { 1.0 } else { 0.0 };
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
            vec![("wl:立案".to_string(), 1.25), ("好评".to_string(), -0.5)],
            0.75,
        );
        let text = m.to_tsv("trained on a fixture\nsecond line");
        assert!(
            text.starts_with(
                "# trained on a fixture\n# second line\n__bias__\t0.750000\nwl:立案\t1.250000\n"
            ),
            "{text}"
        );
        let back = LearnedModel::parse(&text, "learned.tsv").unwrap();
        assert_eq!(back.bias, 0.75);
        assert_eq!(back.weight("好评"), Some(-0.5));
        let err = LearnedModel::parse("__bias__\t0\n好\tabc\n", "x.tsv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.tsv:2"), "{err}");
        assert!(LearnedModel::parse("好\t1\n", "x.tsv")
            .unwrap_err()
            .to_string()
            .contains("__bias__"));
    }

    #[test]
    fn display_terms() {
        assert_eq!(display_term("wl:立案").as_deref(), Some("立案"));
        assert_eq!(display_term("暴力_催收").as_deref(), Some("暴力催收"));
        assert_eq!(display_term("s:no_neg"), None);
        assert_eq!(display_term("<E>_被"), None);
    }

    #[test]
    fn training_separates_a_toy_problem() {
        // Feature 0 marks negatives, feature 1 positives, feature 2 is noise on both.
        let rows: Vec<Row> = (0..40)
            .map(|i| Row {
                features: vec![(if i % 2 == 0 { 0 } else { 1 }, 1.0), (2, 1.0)],
                negative: i % 2 == 0,
            })
            .collect();
        let (w, _) = train(&rows, 3, &TrainOptions::default());
        assert!(w[0] > 1.0 && w[1] < -1.0, "{w:?}");
        assert!(w[2].abs() < 0.5, "{w:?}");
    }
}
