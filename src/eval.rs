//! Measuring the scorer: labeled CSV data, accuracy and negative-class F1, cross-validation,
//! and the speed benchmark. Used by `yuqing eval`, `yuqing learn` and `yuqing bench`.
//!
//! A malformed row (missing column, unknown label, broken quoting or encoding) is reported on
//! stderr with its row number and counted; it never stops a run, because a 60,000-row export
//! with three bad lines should still be measurable.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::analyze::brand::BrandMatcher;
use crate::analyze::learned::{self, LearnedModel, Row, TrainOptions, Vocabulary};
use crate::analyze::Analyzer;

/// Which columns hold what, and which label value means "negative".
#[derive(Debug, Clone)]
pub struct Columns {
    pub text: String,
    pub label: String,
    pub negative_value: String,
    /// When set, each row is judged about this column's entity.
    pub entity: Option<String>,
}

/// One labeled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub entity: Option<String>,
    pub negative: bool,
}

/// Rows read, and what was wrong with the rest.
#[derive(Debug, Default)]
pub struct Dataset {
    pub examples: Vec<Example>,
    pub malformed: Vec<String>,
}

/// Reads a labeled CSV (UTF-8, header row). Labels other than `negative_value` count as not
/// negative, except empty ones, which are malformed.
pub fn read_csv(path: &Path, cols: &Columns) -> Result<Dataset> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let find = |name: &str| -> Result<usize> {
        match headers.iter().position(|h| h.trim() == name) {
            Some(i) => Ok(i),
            None => bail!(
                "{}: no column {name:?}; the columns are: {}",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        }
    };
    let text_i = find(&cols.text)?;
    let label_i = find(&cols.label)?;
    let entity_i = cols.entity.as_deref().map(find).transpose()?;
    let mut data = Dataset::default();
    let mut record = csv::ByteRecord::new();
    let mut row = 1; // the header
    loop {
        row += 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                data.malformed
                    .push(format!("{}: row {row}: {e}", path.display()));
                continue;
            }
        }
        let field = |i: usize| -> Result<&str, String> {
            let bytes = record
                .get(i)
                .ok_or_else(|| format!("missing column {}", i + 1))?;
            std::str::from_utf8(bytes).map_err(|_| format!("column {} is not UTF-8", i + 1))
        };
        let parsed = (|| -> Result<Example, String> {
            let text = field(text_i)?.trim();
            let label = field(label_i)?.trim();
            if text.is_empty() {
                return Err("empty text".into());
            }
            if label.is_empty() {
                return Err("empty label".into());
            }
            let entity = match entity_i {
                Some(i) => {
                    let e = field(i)?.trim();
                    if e.is_empty() {
                        return Err("empty entity".into());
                    }
                    Some(e.to_string())
                }
                None => None,
            };
            Ok(Example {
                text: text.to_string(),
                entity,
                negative: label == cols.negative_value,
            })
        })();
        match parsed {
            Ok(ex) => data.examples.push(ex),
            Err(why) => data
                .malformed
                .push(format!("{}: row {row}: {why}", path.display())),
        }
    }
    Ok(data)
}

/// Confusion counts for the negative class.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

impl Confusion {
    pub fn add(&mut self, predicted_negative: bool, truly_negative: bool) {
        match (predicted_negative, truly_negative) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }

    pub fn merge(&mut self, other: Confusion) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.tn += other.tn;
        self.fn_ += other.fn_;
    }

    pub fn n(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.n())
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The summary line of `yuqing eval`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub n: u64,
    pub accuracy: f64,
    pub neg_precision: f64,
    pub neg_recall: f64,
    pub neg_f1: f64,
    pub docs_per_s: f64,
    pub malformed: usize,
    /// Rows whose entity does not occur in the text (judged not negative).
    pub entity_missing: u64,
    /// Cross-validation folds, 0 when the scorer was evaluated as shipped.
    pub folds: usize,
}

impl Report {
    pub fn new(
        c: Confusion,
        docs_per_s: f64,
        malformed: usize,
        entity_missing: u64,
        folds: usize,
    ) -> Report {
        let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
        Report {
            n: c.n(),
            accuracy: r4(c.accuracy()),
            neg_precision: r4(c.precision()),
            neg_recall: r4(c.recall()),
            neg_f1: r4(c.f1()),
            docs_per_s: docs_per_s.round(),
            malformed,
            entity_missing,
            folds,
        }
    }
}

/// Judges one example: about its entity when it has one, else the whole text. Returns the
/// verdict and whether the entity was found.
pub fn predict(analyzer: &Analyzer, ex: &Example) -> (bool, bool) {
    let matcher = ex.entity.as_deref().map(|e| analyzer.matcher_for(e));
    predict_with(analyzer, ex, matcher.as_ref())
}

/// [`predict`] with the example's entity matcher built beforehand, as the daemon builds its
/// brands' matchers once at start.
fn predict_with(analyzer: &Analyzer, ex: &Example, matcher: Option<&BrandMatcher>) -> (bool, bool) {
    match matcher {
        Some(m) => match analyzer.judge_target(&ex.text, m) {
            Some(j) => (j.negative, true),
            None => (false, false),
        },
        None => (analyzer.judge_text(&ex.text).negative, true),
    }
}

/// Scores every example with `analyzer`.
pub fn evaluate(analyzer: &Analyzer, examples: &[Example]) -> (Confusion, u64, f64) {
    let started = Instant::now();
    let mut c = Confusion::default();
    let mut missing = 0;
    for ex in examples {
        let (negative, found) = predict(analyzer, ex);
        if !found {
            missing += 1;
        }
        c.add(negative, ex.negative);
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    (c, missing, examples.len() as f64 / secs)
}

/// Splits examples into `k` folds so that every row of one text lands in the same fold (the
/// same post judged about two entities must not be in training and test at once). Stable:
/// the fold of a text depends only on the text.
pub fn fold_of(text: &str, k: usize) -> usize {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % k as u64) as usize
}

/// Throughput of the whole analysis against bare jieba segmentation on the same documents,
/// on the calling thread only.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub docs: usize,
    pub chars: usize,
    pub jieba_docs_per_s: f64,
    pub jieba_mchars_per_s: f64,
    pub analysis_docs_per_s: f64,
    pub analysis_mchars_per_s: f64,
    /// analysis ÷ bare jieba throughput.
    pub ratio_to_jieba: f64,
}

/// Times every step a post goes through (normalize, segment, find the target, score) for each
/// example: about its entity when it has one, else the whole text.
pub fn bench(analyzer: &Analyzer, examples: &[Example], rounds: usize) -> BenchReport {
    let bare = crate::analyze::dictionary::standard_jieba();
    let chars: usize = examples.iter().map(|e| e.text.chars().count()).sum();
    let rounds = rounds.max(1);
    // Best of several rounds: the least disturbed by whatever else the machine is doing.
    let mut jieba_best = f64::MAX;
    let mut analysis_best = f64::MAX;
    let mut sink = 0usize;
    // Brand matchers are built once when the daemon starts, never per post: so here too.
    let matchers: Vec<Option<BrandMatcher>> = examples
        .iter()
        .map(|ex| ex.entity.as_deref().map(|e| analyzer.matcher_for(e)))
        .collect();
    for _ in 0..rounds {
        let t = Instant::now();
        sink = sink.wrapping_add(bench_pass_jieba(&bare, examples));
        jieba_best = jieba_best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        sink = sink.wrapping_add(bench_pass_analysis(analyzer, examples, &matchers));
        analysis_best = analysis_best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    let per = |secs: f64| examples.len() as f64 / secs.max(1e-9);
    let mchars = |secs: f64| chars as f64 / secs.max(1e-9) / 1e6;
    BenchReport {
        docs: examples.len(),
        chars,
        jieba_docs_per_s: per(jieba_best).round(),
        jieba_mchars_per_s: (mchars(jieba_best) * 1000.0).round() / 1000.0,
        analysis_docs_per_s: per(analysis_best).round(),
        analysis_mchars_per_s: (mchars(analysis_best) * 1000.0).round() / 1000.0,
        ratio_to_jieba: ((jieba_best / analysis_best) * 1000.0).round() / 1000.0,
    }
}

// One timed pass each, never inlined, so that a profiler can count exactly one side:
// `valgrind --tool=callgrind --toggle-collect='*bench_pass_analysis*' yuqing bench …` gives
// instruction counts and simulated cache misses that, unlike seconds, do not depend on what
// else the machine is doing.

#[inline(never)]
fn bench_pass_jieba(bare: &jieba_rs::Jieba, examples: &[Example]) -> usize {
    examples
        .iter()
        .map(|ex| bare.cut(&ex.text, true).len())
        .sum()
}

#[inline(never)]
fn bench_pass_analysis(
    analyzer: &Analyzer,
    examples: &[Example],
    matchers: &[Option<BrandMatcher>],
) -> usize {
    examples
        .iter()
        .zip(matchers)
        .map(|(ex, matcher)| usize::from(predict_with(analyzer, ex, matcher.as_ref()).0))
        .sum()
}

/// Writes staff feedback as labeled rows in the shape of the finance training set
/// (`id,entity,label,text`, label 1 = negative about the entity), so that
/// `yuqing learn FILE --text-col text --label-col label --negative-value 1 --entity-col entity`
/// retrains on it, alone or appended to other data.
pub fn write_feedback_csv<W: std::io::Write>(
    feedback: &[(u64, crate::store::Feedback)],
    out: W,
) -> Result<usize> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["id", "entity", "label", "text"])?;
    for (id, f) in feedback {
        let label = if f.negative { "1" } else { "0" };
        w.write_record([
            format!("fb{id}").as_str(),
            f.brand.as_str(),
            label,
            f.text.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(feedback.len())
}

/// The columns `yuqing export-feedback` writes (see [`write_feedback_csv`]).
pub fn feedback_columns() -> Columns {
    Columns {
        text: "text".to_string(),
        label: "label".to_string(),
        negative_value: "1".to_string(),
        entity: Some("entity".to_string()),
    }
}

/// Reads staff verdicts, as `yuqing export-feedback` wrote them.
pub fn read_feedback(path: &Path) -> Result<Dataset> {
    read_csv(path, &feedback_columns()).with_context(|| {
        format!(
            "reading staff verdicts (yuqing export-feedback's CSV) from {}",
            path.display()
        )
    })
}

/// Gives every row from `first` on (the staff verdicts, appended last) `weight` in training.
pub fn weigh_from(set: &mut FeatureSet, first: usize, weight: f64) {
    for row in set.rows.iter_mut().skip(first).flatten() {
        row.weight = weight;
    }
}

/// Every example as a training row, with the fold of its text. Rows whose entity is not in the
/// text have no features and are `None` (they always count as "not negative").
pub struct FeatureSet {
    pub vocabulary: Vocabulary,
    pub rows: Vec<Option<Row>>,
}

pub fn extract(analyzer: &Analyzer, examples: &[Example]) -> FeatureSet {
    let mut vocabulary = Vocabulary::default();
    let rows = examples
        .iter()
        .map(|ex| {
            let mut found = true;
            let mut row = vocabulary.row(
                |emit| found = analyzer.features(&ex.text, ex.entity.as_deref(), emit),
                ex.negative,
            );
            row.targeted = ex.entity.is_some();
            found.then_some(row)
        })
        .collect();
    FeatureSet { vocabulary, rows }
}

/// A fitted model's weights by name, exactly as trained (the loaded [`LearnedModel`] keeps
/// them as `f32`; the file is written from these).
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The weights kept (|w| ≥ the pruning threshold), by feature name.
    pub weights: Vec<(String, f64)>,
    /// With the decision offset folded in (see [`fit`]).
    pub bias: f64,
    pub targeted: bool,
    /// Non-zero weights before pruning.
    pub nonzero: usize,
}

impl Fitted {
    pub fn model(&self) -> LearnedModel {
        LearnedModel::from_weights(self.weights.iter().cloned(), self.bias, self.targeted)
    }

    pub fn to_tsv(&self, header: &str) -> String {
        learned::write_tsv(header, self.targeted, self.bias, &self.weights)
    }
}

/// Fits a model on the given rows and names its features.
pub fn fit(set: &FeatureSet, rows: &[&Row], opts: &TrainOptions, threshold: f64) -> Fitted {
    let (w, b) = learned::train(rows, set.vocabulary.names.len(), opts);
    let nonzero = w.iter().filter(|x| **x != 0.0).count();
    let weights = w
        .iter()
        .enumerate()
        .filter(|(_, x)| x.abs() >= opts.prune_below)
        .map(|(i, x)| (set.vocabulary.names[i].clone(), *x))
        .collect();
    // Fold the decision offset into the bias: the analyzer calls a post negative when
    // score = -(bias + w·x) < -threshold, which must mean w·x + b > 0, P(negative) > ½.
    Fitted {
        weights,
        bias: b + threshold,
        targeted: rows.iter().any(|r| r.targeted),
        nonzero,
    }
}

/// What a cross-validation fold keeps together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// Every row of one entity (and of the entities nested in its name) is tested in one
    /// fold, and no row sharing a text with that fold is trained on: what a customer whose
    /// brand the model has never seen gets.
    Entity,
    /// Every row of one text in one fold; the same companies appear in training and test.
    Text,
}

/// Which rows each fold tests and trains on.
#[derive(Debug, Clone)]
pub struct Folds {
    pub k: usize,
    /// The fold that tests each row.
    pub fold: Vec<usize>,
    /// Bit `f` set: the row shares its text with a row tested in fold `f`, so fold `f` must
    /// not train on it.
    text_in: Vec<u64>,
}

impl Folds {
    /// Splits `examples` into `k` folds (2 ≤ k ≤ 64).
    ///
    /// By text, a row's fold is [`fold_of`] its text. By entity, entities are grouped with the
    /// entities whose names contain them (资易贷 and 资易贷（北京）金融信息服务有限公司 are one
    /// company) by union-find, and the groups are dealt to folds, largest first, each to the
    /// fold with the fewest rows so far. A text naming several entities in different folds
    /// cannot be kept whole: keeping every text *and* every entity together joins 81% of
    /// finance_brand_train's rows into one group. So it is tested in each of their folds (one
    /// row each), and none of its rows is trained on by those folds. Rows without an entity
    /// are grouped by text.
    pub fn new(examples: &[Example], k: usize, grouping: Grouping) -> Result<Folds> {
        if !(2..=64).contains(&k) {
            bail!("--cv {k}: the number of folds must be between 2 and 64");
        }
        let fold: Vec<usize> = match grouping {
            Grouping::Text => examples.iter().map(|e| fold_of(&e.text, k)).collect(),
            Grouping::Entity => entity_folds(examples, k),
        };
        let mut by_text: rustc_hash::FxHashMap<&str, u64> = Default::default();
        for (ex, &f) in examples.iter().zip(&fold) {
            *by_text.entry(ex.text.as_str()).or_default() |= 1 << f;
        }
        let text_in = examples.iter().map(|e| by_text[e.text.as_str()]).collect();
        Ok(Folds { k, fold, text_in })
    }

    /// Whether fold `f` trains on row `row`: it is tested elsewhere, and shares no text with
    /// fold `f`'s tests.
    pub fn trains_on(&self, row: usize, f: usize) -> bool {
        self.fold[row] != f && self.text_in[row] & (1 << f) == 0
    }
}

/// Entity grouping for [`Folds::new`].
fn entity_folds(examples: &[Example], k: usize) -> Vec<usize> {
    // Union-find over distinct keys: entity names, or `\0text` for rows without an entity.
    let mut keys: rustc_hash::FxHashMap<String, usize> = Default::default();
    let row_key: Vec<usize> = examples
        .iter()
        .map(|e| {
            let key = match &e.entity {
                Some(name) => name.clone(),
                None => format!("\0{}", e.text),
            };
            let next = keys.len();
            *keys.entry(key).or_insert(next)
        })
        .collect();
    let mut parent: Vec<usize> = (0..keys.len()).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut names: Vec<(&str, usize)> = keys
        .iter()
        .filter(|(name, _)| !name.starts_with('\0'))
        .map(|(name, &id)| (name.as_str(), id))
        .collect();
    // Sorted, so that the grouping never depends on hash order.
    names.sort_unstable();
    for (i, &(a, ia)) in names.iter().enumerate() {
        for &(b, ib) in &names[i + 1..] {
            // One-character names would join everything; nobody names a brand that way.
            let nested =
                |inner: &str, outer: &str| inner.chars().nth(1).is_some() && outer.contains(inner);
            if nested(a, b) || nested(b, a) {
                let (ra, rb) = (root(&mut parent, ia), root(&mut parent, ib));
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    // Rows per group; groups named by their smallest key for a stable order.
    let group_of: Vec<usize> = row_key.iter().map(|&key| root(&mut parent, key)).collect();
    let mut sizes: rustc_hash::FxHashMap<usize, (usize, &str)> = Default::default();
    for (row, &g) in group_of.iter().enumerate() {
        let ex = &examples[row];
        let name = ex.entity.as_deref().unwrap_or(&ex.text);
        let entry = sizes.entry(g).or_insert((0, name));
        entry.0 += 1;
        entry.1 = entry.1.min(name);
    }
    let mut groups: Vec<(usize, &str, usize)> = sizes
        .into_iter()
        .map(|(g, (n, name))| (n, name, g))
        .collect();
    groups.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut load = vec![0usize; k];
    let mut fold_of_group: rustc_hash::FxHashMap<usize, usize> = Default::default();
    for (n, _, g) in groups {
        let f = (0..k).min_by_key(|&f| (load[f], f)).unwrap_or(0);
        load[f] += n;
        fold_of_group.insert(g, f);
    }
    group_of.iter().map(|g| fold_of_group[g]).collect()
}

/// Bins of predicted probability for a reliability table.
const RELIABILITY_BINS: usize = 10;

/// One bin of a reliability table: rows whose predicted probability of "negative" fell in
/// `[low, high)`, and how many of them were negative.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReliabilityBin {
    pub low: f64,
    pub high: f64,
    pub n: u64,
    pub mean_predicted: f64,
    pub observed_negative: f64,
}

/// The reliability table of held-out `(predicted probability, truly negative)` pairs; empty
/// bins are left out.
pub fn reliability(predictions: &[(f64, bool)]) -> Vec<ReliabilityBin> {
    let mut sums = [(0u64, 0.0f64, 0u64); RELIABILITY_BINS];
    for &(p, negative) in predictions {
        let bin = ((p * RELIABILITY_BINS as f64) as usize).min(RELIABILITY_BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += p;
        sums[bin].2 += u64::from(negative);
    }
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(i, &(n, p, neg))| ReliabilityBin {
            low: i as f64 / RELIABILITY_BINS as f64,
            high: (i + 1) as f64 / RELIABILITY_BINS as f64,
            n,
            mean_predicted: r3(p / n as f64),
            observed_negative: r3(neg as f64 / n as f64),
        })
        .collect()
}

/// Writes each example's held-out judgment as CSV (`row,fold,entity,label,p_negative,verdict,text`;
/// `p_negative` is empty when the entity is not found), so that the errors can be read.
pub fn write_cv_predictions<W: std::io::Write>(
    examples: &[Example],
    folds: &Folds,
    result: &CvResult,
    out: W,
) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "row",
        "fold",
        "entity",
        "label",
        "p_negative",
        "verdict",
        "text",
    ])?;
    for (i, ex) in examples.iter().enumerate() {
        w.write_record([
            i.to_string().as_str(),
            folds.fold[i].to_string().as_str(),
            ex.entity.as_deref().unwrap_or(""),
            if ex.negative { "1" } else { "0" },
            result.probabilities[i]
                .map(|p| format!("{p:.4}"))
                .unwrap_or_default()
                .as_str(),
            if result.verdicts[i] { "1" } else { "0" },
            ex.text.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// What cross-validation measured.
#[derive(Debug, Default)]
pub struct CvResult {
    pub confusion: Confusion,
    /// Held-out (P(negative), truly negative) of every row the model could judge.
    pub predictions: Vec<(f64, bool)>,
    /// Training rows left out because they share a text with the fold tested (summed over
    /// folds).
    pub purged: usize,
    /// The held-out verdict on each example (negative or not), by its index.
    pub verdicts: Vec<bool>,
    /// The held-out P(negative) of each example, by its index; `None` when its entity is not
    /// found in its text.
    pub probabilities: Vec<Option<f64>>,
}

/// The confusion counts of each set, when examples come from several files: `sets[i]` is the
/// set of example `i`, `verdicts[i]` the verdict on it.
pub fn by_set(examples: &[Example], sets: &[usize], verdicts: &[bool]) -> Vec<Confusion> {
    let mut out = vec![Confusion::default(); sets.iter().max().map_or(0, |&m| m + 1)];
    for ((ex, &set), &negative) in examples.iter().zip(sets).zip(verdicts) {
        out[set].add(negative, ex.negative);
    }
    out
}

/// Which features a cross-validated model may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureChoice {
    /// Everything the analyzer extracts.
    All,
    /// Only the hand-rule score (and the bias): the rules alone, calibrated into a probability.
    RulesOnly,
}

/// K-fold cross-validation: trains on the rows `folds` lets each fold train on, predicts the
/// rows it tests.
pub fn cross_validate(
    set: &FeatureSet,
    examples: &[Example],
    folds: &Folds,
    opts: &TrainOptions,
    choice: FeatureChoice,
) -> CvResult {
    let mut out = CvResult {
        verdicts: vec![false; examples.len()],
        probabilities: vec![None; examples.len()],
        ..CvResult::default()
    };
    let rule_id = set
        .vocabulary
        .names
        .iter()
        .position(|n| n == learned::RULE_FEATURE);
    let rules_only: Vec<Option<Row>>;
    let rows: &[Option<Row>] = match choice {
        FeatureChoice::All => &set.rows,
        FeatureChoice::RulesOnly => {
            rules_only = set
                .rows
                .iter()
                .map(|r| {
                    r.as_ref().map(|r| Row {
                        features: r
                            .features
                            .iter()
                            .copied()
                            .filter(|&(j, _)| Some(j as usize) == rule_id)
                            .collect(),
                        ..r.clone()
                    })
                })
                .collect();
            &rules_only
        }
    };
    for fold in 0..folds.k {
        let train: Vec<&Row> = rows
            .iter()
            .enumerate()
            .filter(|&(i, _)| folds.trains_on(i, fold))
            .filter_map(|(_, r)| r.as_ref())
            .collect();
        out.purged += (0..rows.len())
            .filter(|&i| folds.fold[i] != fold && !folds.trains_on(i, fold))
            .count();
        let (w, b) = learned::train(&train, set.vocabulary.names.len(), opts);
        let mut c = Confusion::default();
        for (i, ex) in examples.iter().enumerate() {
            if folds.fold[i] != fold {
                continue;
            }
            let z = rows[i].as_ref().map(|r| {
                b + r
                    .features
                    .iter()
                    .filter(|&&(j, _)| w[j as usize].abs() >= opts.prune_below)
                    .map(|&(j, v)| w[j as usize] * v)
                    .sum::<f64>()
            });
            if let Some(z) = z {
                let p = 1.0 / (1.0 + (-z).exp());
                out.predictions.push((p, ex.negative));
                out.probabilities[i] = Some(p);
            }
            let verdict = z.is_some_and(|z| z > 0.0);
            out.verdicts[i] = verdict;
            c.add(verdict, ex.negative);
        }
        tracing::info!(
            fold,
            f1 = c.f1(),
            accuracy = c.accuracy(),
            trained_on = train.len(),
            "cross-validation fold"
        );
        out.confusion.merge(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(entity: bool) -> Columns {
        Columns {
            text: "text".into(),
            label: "label".into(),
            negative_value: "1".into(),
            entity: entity.then(|| "entity".into()),
        }
    }

    #[test]
    fn malformed_rows_are_reported_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        let mut bytes =
            b"id,entity,label,text\n1,A,1,A is a scam\n2,B,,no label\n3,C,0\n4,,0,no entity\n"
                .to_vec();
        bytes.extend_from_slice(b"5,D,0,\xff\xfe bad utf8\n6,E,0,E is fine\n");
        std::fs::write(&path, bytes).unwrap();
        let data = read_csv(&path, &cols(true)).unwrap();
        assert_eq!(data.examples.len(), 2);
        assert_eq!(data.malformed.len(), 4, "{:?}", data.malformed);
        assert!(data.malformed[0].contains("row 3"), "{:?}", data.malformed);
        assert!(data.examples[0].negative && !data.examples[1].negative);
    }

    #[test]
    fn unknown_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, "label,review\n1,good\n").unwrap();
        let err = read_csv(&path, &cols(false)).unwrap_err().to_string();
        assert!(
            err.contains("no column \"text\"") && err.contains("label, review"),
            "{err}"
        );
    }

    #[test]
    fn metrics() {
        let mut c = Confusion::default();
        for (p, t) in [
            (true, true),
            (true, true),
            (true, false),
            (false, true),
            (false, false),
        ] {
            c.add(p, t);
        }
        assert_eq!(c.n(), 5);
        assert!((c.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.accuracy() - 0.6).abs() < 1e-12);
        assert_eq!(Confusion::default().f1(), 0.0);
    }

    #[test]
    fn learn_round_trip_on_a_tiny_fixture() {
        use crate::analyze::lexicon::Lexicon;
        // "X" is the brand in every row; whether a row is negative depends on a word the hand
        // lexicons do not know (展期, a loan extension, stands for domain vocabulary).
        let mut examples = Vec::new();
        for i in 0..30 {
            examples.push(Example {
                text: format!("平台{i}号公告：星辰贷展期，投资人排队"),
                entity: Some("星辰贷".into()),
                negative: true,
            });
            examples.push(Example {
                text: format!("平台{i}号公告：星辰贷上线新功能，投资人排队"),
                entity: Some("星辰贷".into()),
                negative: false,
            });
        }
        let rules = Analyzer::new(Lexicon::builtin().unwrap(), &[], 0.5);
        let set = extract(&rules, &examples);
        let rows: Vec<&Row> = set.rows.iter().flatten().collect();
        assert_eq!(rows.len(), 60);
        let fitted = fit(&set, &rows, &TrainOptions::default(), 0.5);
        let model = fitted.model();
        // The learned file is readable text, and reads back to the same model.
        let tsv = fitted.to_tsv("fixture");
        assert!(tsv.lines().any(|l| l.starts_with("展期\t")), "{tsv}");
        let back = LearnedModel::parse(&tsv, "fixture.tsv").unwrap();
        assert_eq!(back.len(), model.len());
        let learned = Analyzer::new(Lexicon::builtin().unwrap(), &[], 0.5).with_learned(Some(back));
        let target = learned.matcher_for("星辰贷");
        let bad = learned
            .judge_target("星辰贷展期了，投资人排队", &target)
            .unwrap();
        let fine = learned
            .judge_target("星辰贷上线新功能，投资人排队", &target)
            .unwrap();
        assert!(
            bad.negative && !fine.negative,
            "{} {}",
            bad.score,
            fine.score
        );
        assert!(bad.terms().iter().any(|t| t == "展期"), "{:?}", bad.terms());
        let sum: f64 = bad.contributions.iter().map(|c| c.value).sum();
        assert!(
            (sum - bad.score).abs() < 1e-6,
            "explanations add up: {sum} vs {}",
            bad.score
        );
        // A model learned about entities does not judge texts without one: those stay with
        // the rules.
        let text = "星辰贷展期了，投资人排队";
        assert!(learned.learned().unwrap().targeted);
        assert_eq!(learned.judge_text(text), rules.judge_text(text));
        let folds = Folds::new(&examples, 3, Grouping::Text).unwrap();
        let cv = cross_validate(
            &set,
            &examples,
            &folds,
            &TrainOptions::default(),
            FeatureChoice::All,
        );
        assert!(cv.confusion.accuracy() > 0.9, "{:?}", cv.confusion);
        assert_eq!(cv.predictions.len(), 60);
        // Each row's held-out judgment can be written out to be read.
        let mut out = Vec::new();
        write_cv_predictions(&examples, &folds, &cv, &mut out).unwrap();
        let mut r = csv::Reader::from_reader(out.as_slice());
        let records: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(records.len(), 60);
        for (i, rec) in records.iter().enumerate() {
            assert_eq!(rec[0].parse::<usize>().unwrap(), i);
            assert_eq!(rec[1].parse::<usize>().unwrap(), folds.fold[i]);
            assert_eq!(&rec[3], if examples[i].negative { "1" } else { "0" });
            let p: f64 = rec[4].parse().unwrap();
            assert_eq!(&rec[5], if p > 0.5 { "1" } else { "0" }, "{rec:?}");
            assert_eq!(&rec[6], examples[i].text);
        }
    }

    #[test]
    fn feedback_exports_as_training_rows() {
        use crate::store::{Actor, Feedback, Store};
        let store = Store::temporary().unwrap();
        let by = Actor {
            id: 7,
            name: "@alice".into(),
        };
        let now = chrono::Utc::now();
        store
            .add_feedback(&Feedback {
                hit: None,
                brand: "度小满".into(),
                text: "度小满暴力催收，\"骚扰\"家人".into(),
                url: None,
                negative: true,
                by: by.clone(),
                at: now,
            })
            .unwrap();
        store
            .add_feedback(&Feedback {
                hit: None,
                brand: "度小满".into(),
                text: "欢度小满, 度小满发布财报".into(),
                url: None,
                negative: false,
                by,
                at: now,
            })
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feedback.csv");
        let n = write_feedback_csv(
            &store.feedback().unwrap(),
            std::fs::File::create(&path).unwrap(),
        )
        .unwrap();
        assert_eq!(n, 2);
        let data = read_csv(&path, &cols(true)).unwrap();
        assert!(data.malformed.is_empty(), "{:?}", data.malformed);
        assert_eq!(data.examples.len(), 2);
        assert!(data.examples[0].negative && !data.examples[1].negative);
        assert_eq!(
            data.examples[0].text, "度小满暴力催收，\"骚扰\"家人",
            "quotes survive"
        );
        assert_eq!(data.examples[1].entity.as_deref(), Some("度小满"));
    }

    #[test]
    fn folds_keep_a_text_together() {
        assert_eq!(fold_of("same text", 5), fold_of("same text", 5));
        let spread: std::collections::HashSet<usize> =
            (0..100).map(|i| fold_of(&format!("t{i}"), 5)).collect();
        assert_eq!(spread.len(), 5);
    }

    fn example(text: &str, entity: &str, negative: bool) -> Example {
        Example {
            text: text.into(),
            entity: Some(entity.into()),
            negative,
        }
    }

    #[test]
    fn entity_folds_never_share_an_entity_or_a_text_between_train_and_test() {
        let mut examples = Vec::new();
        let names = [
            "甲贷", "乙贷", "丙贷", "丁贷", "戊贷", "己贷", "庚贷", "辛贷", "壬贷", "癸贷",
        ];
        for (i, name) in names.iter().enumerate() {
            // Each company alone, a few times.
            for j in 0..(1 + i % 3) {
                examples.push(example(&format!("{name}的第{j}条"), name, j % 2 == 0));
            }
        }
        // One text naming two companies, each judged; and a longer name holding a short one.
        examples.push(example("乙贷和丙贷都出事了", "乙贷", true));
        examples.push(example("乙贷和丙贷都出事了", "丙贷", true));
        examples.push(example(
            "丁贷（北京）有限公司发公告",
            "丁贷（北京）有限公司",
            false,
        ));
        let folds = Folds::new(&examples, 4, Grouping::Entity).unwrap();
        let family = |e: &str| {
            if e.starts_with("丁贷") {
                "丁贷".to_string()
            } else {
                e.to_string()
            }
        };
        for f in 0..4 {
            let tested: Vec<&Example> = (0..examples.len())
                .filter(|&i| folds.fold[i] == f)
                .map(|i| &examples[i])
                .collect();
            assert!(!tested.is_empty(), "fold {f} tests something");
            for (i, ex) in examples.iter().enumerate() {
                if !folds.trains_on(i, f) {
                    continue;
                }
                for t in &tested {
                    let (a, b) = (ex.entity.as_deref().unwrap(), t.entity.as_deref().unwrap());
                    assert_ne!(family(a), family(b), "fold {f} trains on {a} and tests {b}");
                    assert_ne!(ex.text, t.text, "fold {f} trains on a text it tests");
                }
            }
        }
        // The nested name goes with its company.
        let at = |e: &str| {
            examples
                .iter()
                .position(|x| x.entity.as_deref() == Some(e))
                .unwrap()
        };
        assert_eq!(
            folds.fold[at("丁贷")],
            folds.fold[at("丁贷（北京）有限公司")]
        );
        // Every row is tested exactly once, and the folds are balanced to within a group.
        let mut load = [0; 4];
        for &f in &folds.fold {
            load[f] += 1;
        }
        assert!(
            load.iter().max().unwrap() - load.iter().min().unwrap() <= 3,
            "{load:?}"
        );
        // The same split every time.
        assert_eq!(
            Folds::new(&examples, 4, Grouping::Entity).unwrap().fold,
            folds.fold
        );
    }

    #[test]
    fn text_folds_keep_texts_together_but_share_entities() {
        let examples: Vec<Example> = (0..40)
            .map(|i| example(&format!("甲公司第{i}条"), "甲公司", i % 2 == 0))
            .collect();
        let folds = Folds::new(&examples, 5, Grouping::Text).unwrap();
        let used: std::collections::HashSet<usize> = folds.fold.iter().copied().collect();
        assert!(used.len() > 1, "one entity spread over folds");
        let by_entity = Folds::new(&examples, 5, Grouping::Entity).unwrap();
        let used: std::collections::HashSet<usize> = by_entity.fold.iter().copied().collect();
        assert_eq!(used.len(), 1, "one entity, one fold");
        assert!(Folds::new(&examples, 1, Grouping::Entity)
            .unwrap_err()
            .to_string()
            .contains("--cv 1"));
    }

    #[test]
    fn cross_validation_reports_each_set() {
        // Two sets learned together: in the first, 发霉 marks the negatives; in the second,
        // 延误 does. Neither is a lexicon word.
        let mut examples = Vec::new();
        let mut sets = Vec::new();
        for i in 0..20 {
            for (set, bad, good) in [(0, "发霉", "新鲜"), (1, "延误", "准点")] {
                for (word, negative) in [(bad, true), (good, false)] {
                    examples.push(Example {
                        text: format!("第{i}单，{word}"),
                        entity: None,
                        negative,
                    });
                    sets.push(set);
                }
            }
        }
        // A row of the second set labelled against its word: a false alarm, in set 1 only.
        examples.push(Example {
            text: "第99单，延误".into(),
            entity: None,
            negative: false,
        });
        sets.push(1);
        let analyzer = Analyzer::new(
            crate::analyze::lexicon::Lexicon::builtin().unwrap(),
            &[],
            0.5,
        );
        let set = extract(&analyzer, &examples);
        let folds = Folds::new(&examples, 4, Grouping::Entity).unwrap();
        let cv = cross_validate(
            &set,
            &examples,
            &folds,
            &TrainOptions::default(),
            FeatureChoice::All,
        );
        let per = by_set(&examples, &sets, &cv.verdicts);
        assert_eq!(per.len(), 2);
        assert_eq!((per[0].n(), per[1].n()), (40, 41));
        assert_eq!(per[0].accuracy(), 1.0, "{:?}", per[0]);
        assert_eq!((per[1].fp, per[1].fn_), (1, 0), "{:?}", per[1]);
        let mut all = per[0];
        all.merge(per[1]);
        assert_eq!(all, cv.confusion, "the sets add up to the whole");
    }

    #[test]
    fn reliability_bins_predictions() {
        let table = reliability(&[(0.05, false), (0.07, true), (0.95, true), (1.0, true)]);
        assert_eq!(table.len(), 2);
        assert_eq!((table[0].n, table[0].observed_negative), (2, 0.5));
        assert_eq!(table[0].mean_predicted, 0.06);
        assert_eq!(
            (table[1].low, table[1].n, table[1].observed_negative),
            (0.9, 2, 1.0)
        );
    }

    #[test]
    fn english_airline_complaints_fixture() {
        use crate::analyze::lexicon::{self, Lexicon};
        // tests/fixtures/en_airline_complaints.csv: 46 tweets to a made-up airline, written for
        // issue 15 (label 1 = negative about it). The shipped scorer, which leaves posts
        // without Chinese to the rules (the brand model learned from Chinese posts).
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/en_airline_complaints.csv");
        let data = read_csv(&path, &cols(true)).unwrap();
        assert_eq!((data.examples.len(), data.malformed.len()), (46, 0));
        let model = lexicon::load_learned(None).unwrap();
        let general = lexicon::load_general(None).unwrap();
        let shipped = Analyzer::new(Lexicon::builtin().unwrap(), &[], 0.5)
            .with_models(Some(model), Some(general));
        let (c, missing, _) = evaluate(&shipped, &data.examples);
        assert_eq!(missing, 0);
        // BENCHMARKS.md: recall 0.667 before issue 15, 0.875 after, 0.917 with the rules alone.
        assert!(c.recall() >= 0.85 && c.precision() >= 0.9, "{c:?}");
    }
}
