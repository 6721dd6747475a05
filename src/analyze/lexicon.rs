//! The word lists in `lexicons/`, loaded into one lookup table.
//!
//! The files are compiled into the binary so the daemon judges the same way wherever it runs;
//! `analysis.lexicon_dir` swaps in edited copies, file by file. Every file is plain TSV with a
//! documenting header (see lexicons/README.md); a malformed line is an error naming the file
//! and line, because a silently skipped lexicon line is a silently wrong score.
//!
//! All lists merge into a single `word → Entry` map so that scoring costs one hash lookup per
//! token, whatever the number of lists.

use std::path::Path;

use rustc_hash::FxHashSet;

use anyhow::{bail, Context, Result};

use super::words::WordTable;

/// (file name, built-in contents), in load order.
const BUILTIN: &[(&str, &str)] = &[
    (
        "zh_negative.tsv",
        include_str!("../../lexicons/zh_negative.tsv"),
    ),
    (
        "zh_positive.tsv",
        include_str!("../../lexicons/zh_positive.tsv"),
    ),
    (
        "en_negative.tsv",
        include_str!("../../lexicons/en_negative.tsv"),
    ),
    (
        "en_positive.tsv",
        include_str!("../../lexicons/en_positive.tsv"),
    ),
    (
        "zh_negation.tsv",
        include_str!("../../lexicons/zh_negation.tsv"),
    ),
    (
        "en_negation.tsv",
        include_str!("../../lexicons/en_negation.tsv"),
    ),
    (
        "zh_degree.tsv",
        include_str!("../../lexicons/zh_degree.tsv"),
    ),
    (
        "en_degree.tsv",
        include_str!("../../lexicons/en_degree.tsv"),
    ),
    (
        "zh_contrast.tsv",
        include_str!("../../lexicons/zh_contrast.tsv"),
    ),
    (
        "en_contrast.tsv",
        include_str!("../../lexicons/en_contrast.tsv"),
    ),
    (
        "zh_rhetorical.tsv",
        include_str!("../../lexicons/zh_rhetorical.tsv"),
    ),
    (
        "emoticons.tsv",
        include_str!("../../lexicons/emoticons.tsv"),
    ),
    (
        "crisis_categories.tsv",
        include_str!("../../lexicons/crisis_categories.tsv"),
    ),
    ("crisis.tsv", include_str!("../../lexicons/crisis.tsv")),
];

/// The brand model shipped with the binary (see `yuqing learn`).
const BUILTIN_LEARNED: &str = include_str!("../../lexicons/learned.tsv");
/// The general model shipped with the binary: learned from whole texts without a brand.
const BUILTIN_GENERAL: &str = include_str!("../../lexicons/general.tsv");

/// The brand model: `dir/learned.tsv` when present, else the built-in file.
pub fn load_learned(dir: Option<&Path>) -> Result<super::learned::LearnedModel> {
    load_model(dir, "learned.tsv", BUILTIN_LEARNED)
}

/// The general model: `dir/general.tsv` when present, else the built-in file. It judges texts
/// as a whole, so a file learned about entities (`__targeted__ 1`) is refused.
pub fn load_general(dir: Option<&Path>) -> Result<super::learned::LearnedModel> {
    let model = load_model(dir, "general.tsv", BUILTIN_GENERAL)?;
    if model.targeted {
        bail!(
            "{}: a brand-targeted model (__targeted__ 1): general.tsv must be learned from whole \
             texts, without --entity-col",
            origin_of(dir, "general.tsv")
        );
    }
    Ok(model)
}

/// Where a model file is read from, as errors name it.
fn origin_of(dir: Option<&Path>, name: &str) -> String {
    match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
        Some(path) => path.display().to_string(),
        None => format!("lexicons/{name} (built in)"),
    }
}

fn load_model(
    dir: Option<&Path>,
    name: &str,
    builtin: &str,
) -> Result<super::learned::LearnedModel> {
    match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            super::learned::LearnedModel::parse(&text, &path.display().to_string())
        }
        None => super::learned::LearnedModel::parse(builtin, &origin_of(None, name)),
    }
}

/// What one word means to the scorer. A word may play several roles (诈骗 is negative and a
/// fraud term).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// Signed sentiment weight: below zero is negative. Zero when the word has none.
    pub polarity: f64,
    /// How many following tokens a negation word reaches; 0 when not a negation.
    pub negation_scope: u8,
    /// Degree multiplier for the next sentiment word; 0.0 when not a degree adverb.
    pub degree: f64,
    /// Weights of the text before and after a contrast word.
    pub contrast: Option<(f64, f64)>,
    pub rhetorical: bool,
    /// Index into [`Lexicon::categories`].
    pub crisis: Option<usize>,
}

/// The index of a lexicon entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryId(std::num::NonZeroU32);

impl EntryId {
    /// Non-zero, so that an `Option<EntryId>` takes four bytes: it is carried for every token.
    fn of_index(index: usize) -> EntryId {
        EntryId(std::num::NonZeroU32::new(index as u32 + 1).expect("fewer than 2^32 entries"))
    }

    fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// A crisis category and its harm weight (fraud, violent collection, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub name: String,
    pub harm_weight: f64,
    pub description: String,
}

#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    /// Word → entry id (`None` only while an entry is being added); a [`WordTable`], since
    /// this lookup runs for every token and for pieces of compound tokens.
    ids: WordTable<Option<EntryId>>,
    /// The words, by [`EntryId`].
    words: Vec<String>,
    /// Entries by [`EntryId`], so that a token's entry can be looked up once and carried as
    /// a number (see [`super::Doc`]).
    entries: Vec<Entry>,
    /// First words of multi-word English phrases ("hidden" of "hidden fees").
    phrase_starts: FxHashSet<String>,
    /// A bit per BMP code point: it begins a word of two or more characters. Compound tokens
    /// are searched for words at each of their characters (see `sentiment::units`), and most
    /// characters begin none: one bit test spares a table lookup per length.
    word_starts: Vec<u64>,
    pub categories: Vec<Category>,
}

impl Lexicon {
    /// The lexicons compiled into the binary.
    pub fn builtin() -> Result<Lexicon> {
        Lexicon::load(None)
    }

    /// Built-in lexicons, with any same-named file in `dir` used instead.
    pub fn load(dir: Option<&Path>) -> Result<Lexicon> {
        let mut lex = Lexicon::default();
        for (name, builtin) in BUILTIN {
            let (origin, text) = match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read lexicon {}", path.display()))?;
                    (path.display().to_string(), text)
                }
                None => (format!("lexicons/{name} (built in)"), builtin.to_string()),
            };
            lex.add_file(name, &origin, &text)?;
        }
        Ok(lex)
    }

    pub fn get(&self, word: &str) -> Option<&Entry> {
        self.id(word).map(|id| self.entry_by_id(id))
    }

    pub fn id(&self, word: &str) -> Option<EntryId> {
        self.ids.get(word).copied().flatten()
    }

    /// [`Lexicon::id`] of `text[start..end]` (a char-aligned range).
    pub fn id_in(&self, text: &str, start: usize, end: usize) -> Option<EntryId> {
        self.ids.get_in(text, start, end).copied().flatten()
    }

    pub fn entry_by_id(&self, id: EntryId) -> &Entry {
        &self.entries[id.index()]
    }

    /// Whether `c` may begin a lexicon word of two or more characters (always true outside
    /// the BMP, which the bitmap leaves out).
    pub fn may_begin_word(&self, c: char) -> bool {
        let c = c as usize;
        match self.word_starts.get(c / 64) {
            Some(bits) => bits >> (c % 64) & 1 == 1,
            None => c >= 0x10000,
        }
    }

    /// Whether some multi-word phrase begins with `word`.
    pub fn starts_phrase(&self, word: &str) -> bool {
        word.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && !self.phrase_starts.is_empty()
            && self.phrase_starts.contains(word)
    }

    /// Every word, for the segmenter's dictionary.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn category(&self, index: usize) -> &Category {
        &self.categories[index]
    }

    fn add_file(&mut self, name: &str, origin: &str, text: &str) -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
            self.add_line(name, &fields)
                .with_context(|| format!("{origin}:{line_no}: bad line {line:?}"))?;
        }
        Ok(())
    }

    fn add_line(&mut self, file: &str, f: &[&str]) -> Result<()> {
        let term = normalize_term(f[0]);
        if term.is_empty() {
            bail!("empty term");
        }
        let num = |i: usize, what: &str| -> Result<f64> {
            let s = f.get(i).copied().unwrap_or("");
            let v: f64 = s
                .parse()
                .with_context(|| format!("column {} ({what}) is not a number: {s:?}", i + 1))?;
            if !v.is_finite() {
                bail!("column {} ({what}) is not finite", i + 1);
            }
            Ok(v)
        };
        match file {
            "zh_negative.tsv" | "en_negative.tsv" => {
                let w = num(1, "weight")?;
                self.entry(term).polarity = -w.abs();
            }
            "zh_positive.tsv" | "en_positive.tsv" => {
                let w = num(1, "weight")?;
                self.entry(term).polarity = w.abs();
            }
            "emoticons.tsv" => {
                let w = num(1, "signed weight")?;
                self.entry(term).polarity = w;
            }
            "zh_negation.tsv" | "en_negation.tsv" => {
                let scope = if f.len() > 1 { num(1, "scope")? } else { 3.0 };
                if !(1.0..=20.0).contains(&scope) {
                    bail!("scope must be 1 to 20 tokens");
                }
                self.entry(term).negation_scope = scope as u8;
            }
            "zh_degree.tsv" | "en_degree.tsv" => {
                let m = num(1, "multiplier")?;
                if m <= 0.0 {
                    bail!("multiplier must be > 0");
                }
                self.entry(term).degree = m;
            }
            "zh_contrast.tsv" | "en_contrast.tsv" => {
                let before = num(1, "before weight")?;
                let after = num(2, "after weight")?;
                self.entry(term).contrast = Some((before, after));
            }
            "zh_rhetorical.tsv" => self.entry(term).rhetorical = true,
            "crisis_categories.tsv" => {
                let harm = num(1, "harm weight")?;
                if self.categories.iter().any(|c| c.name == term) {
                    bail!("category {term:?} defined twice");
                }
                self.categories.push(Category {
                    name: term,
                    harm_weight: harm,
                    description: f.get(2).copied().unwrap_or("").to_string(),
                });
            }
            "crisis.tsv" => {
                let cat = f.get(1).copied().unwrap_or("");
                let index = self
                    .categories
                    .iter()
                    .position(|c| c.name == cat)
                    .with_context(|| {
                        format!("unknown crisis category {cat:?} (see crisis_categories.tsv)")
                    })?;
                self.entry(term).crisis = Some(index);
            }
            other => bail!("no loader for lexicon file {other}"),
        }
        Ok(())
    }

    fn entry(&mut self, term: String) -> &mut Entry {
        if let Some((first, _)) = term.split_once(' ') {
            self.phrase_starts.insert(first.to_string());
        }
        let mut chars = term.chars();
        if let (Some(first), Some(_)) = (chars.next(), chars.next()) {
            let c = first as usize;
            if c < 0x10000 {
                if self.word_starts.is_empty() {
                    self.word_starts = vec![0; 0x10000 / 64];
                }
                self.word_starts[c / 64] |= 1 << (c % 64);
            }
        }
        let slot = self.ids.entry(&term);
        let id = match *slot {
            Some(id) => id,
            None => {
                let id = EntryId::of_index(self.entries.len());
                *slot = Some(id);
                self.entries.push(Entry::default());
                self.words.push(term);
                id
            }
        };
        &mut self.entries[id.index()]
    }

    /// Adds or overrides one entry; for tests and learned vocabularies.
    pub fn insert(&mut self, term: &str, entry: Entry) {
        *self.entry(normalize_term(term)) = entry;
    }
}

/// Lexicon terms go through the same normalization as text, so they match.
fn normalize_term(term: &str) -> String {
    super::text::normalize(term).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lexicons_load_with_every_role() {
        let lex = Lexicon::builtin().unwrap();
        assert!(lex.get("好").unwrap().polarity > 0.0);
        assert!(lex.get("差").unwrap().polarity < 0.0);
        assert!(lex.get("不").unwrap().negation_scope > 0);
        assert!(lex.get("非常").unwrap().degree > 1.0);
        assert!(lex.get("但是").unwrap().contrast.is_some());
        assert!(lex.get("难道").unwrap().rhetorical);
        assert!(lex.get("[怒]").unwrap().polarity < 0.0);
        assert!(lex.get("scam").unwrap().polarity < 0.0);
        assert!(lex.get("not").unwrap().negation_scope > 0);
        let fraud = lex.get("诈骗").unwrap().crisis.unwrap();
        assert_eq!(lex.category(fraud).name, "fraud");
        assert!(lex.len() > 1000);
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let mut lex = Lexicon::default();
        let err = lex
            .add_file(
                "zh_degree.tsv",
                "my/zh_degree.tsv",
                "# header\n非常\t1.8\n很\tlots\n",
            )
            .unwrap_err();
        let shown = format!("{err:#}");
        assert!(shown.contains("my/zh_degree.tsv:3"), "{shown}");
        assert!(shown.contains("not a number"), "{shown}");
    }

    #[test]
    fn crisis_terms_need_a_known_category() {
        let mut lex = Lexicon::default();
        let err = lex
            .add_file("crisis.tsv", "crisis.tsv", "跑路\tvanished\n")
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown crisis category"),
            "{err:#}"
        );
    }

    #[test]
    fn builtin_learned_weights_load() {
        let m = load_learned(None).unwrap();
        assert!(m.len() > 1000);
        assert!(m.weight(super::super::learned::RULE_FEATURE).is_some());
    }

    #[test]
    fn builtin_general_model_loads() {
        let m = load_general(None).unwrap();
        assert!(!m.targeted, "it judges whole texts");
        assert!(m.len() > 1000, "{} weights", m.len());
        assert!(m.weight(super::super::learned::RULE_FEATURE).is_some());
    }

    #[test]
    fn general_model_from_the_folder_and_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("general.tsv");
        std::fs::write(
            &path,
            "# a general model\n__targeted__\t0\n__bias__\t0.4\n加班\t1.5\n加班_到\t0.25\n",
        )
        .unwrap();
        let m = load_general(Some(dir.path())).unwrap();
        assert_eq!((m.targeted, m.bias, m.len()), (false, 0.4, 2));
        assert_eq!(m.weight("加班"), Some(1.5));
        assert_eq!(m.weight("加班_到"), Some(0.25));
        assert!(
            load_learned(Some(dir.path())).unwrap().targeted,
            "the brand model stays the built-in one"
        );
        // A broken line names the file and the line.
        std::fs::write(&path, "__targeted__\t0\n__bias__\t0.4\n加班\tmuch\n").unwrap();
        let err = format!("{:#}", load_general(Some(dir.path())).unwrap_err());
        assert!(err.contains(&format!("{}:3", path.display())), "{err}");
        std::fs::write(&path, "__targeted__\t0\n__bias__\t0.4\ns:nonsense\t1\n").unwrap();
        let err = format!("{:#}", load_general(Some(dir.path())).unwrap_err());
        assert!(
            err.contains(&format!("{}:3", path.display())) && err.contains("s:nonsense"),
            "{err}"
        );
        // A model learned about entities does not judge whole texts.
        std::fs::write(&path, "__targeted__\t1\n__bias__\t0.4\n加班\t1\n").unwrap();
        let err = format!("{:#}", load_general(Some(dir.path())).unwrap_err());
        assert!(
            err.contains(&path.display().to_string()) && err.contains("--entity-col"),
            "{err}"
        );
    }

    #[test]
    fn override_dir_replaces_one_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zh_degree.tsv"), "# only one\n超\t3.0\n").unwrap();
        let lex = Lexicon::load(Some(dir.path())).unwrap();
        assert_eq!(lex.get("超").unwrap().degree, 3.0);
        assert_eq!(lex.get("非常").map(|e| e.degree).unwrap_or(0.0), 0.0);
        assert!(
            lex.get("好").unwrap().polarity > 0.0,
            "other files still built in"
        );
    }
}
