//! Finding a brand in text: every alias, minus the phrases where the alias means something
//! else (度小满 inside 欢度小满 is a festival greeting, not the lender).
//!
//! Matching rules (see README "Brand matching"):
//! - texts and names are compared folded ([`super::fold`]): full-width ASCII and case by
//!   normalization, Traditional characters as Simplified, and spaces and decoration dropped;
//! - inside a Chinese name (between two characters of which one is CJK) up to
//!   [`MAX_CJK_GAP`] such characters may stand: `度 小 满`, `度·小·滿`;
//! - between two Latin characters, only where the name itself has a space, hyphen, dot or
//!   underscore, and then at most one: `Virgin America` matches `virgin-america`,
//!   `@VirginAmerica` and `#virgin_america`, but `United` does not match `unit ed`;
//! - a name that starts or ends with a Latin letter or digit must start or end on a word
//!   boundary there (`duxiaomanx` is not `duxiaoman`);
//! - an exclusion found by the same rules removes every mention it overlaps: exclusions win.
//!
//! Mentions are byte spans of the normalized text, whatever the folding dropped or changed, so
//! the scorer's windows and tokens stay on the text as written.

use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind, StartKind};
use memchr::memmem::Finder;

use crate::config::BrandConfig;

use super::fold::{self, Folded};
use super::text::normalize;

/// Most separators that may stand between two characters of a Chinese name (`度 · 小`).
pub const MAX_CJK_GAP: usize = 3;

/// A brand compiled for matching against normalized text: one search over all aliases and one
/// over the exclusions, so finding a brand is a single pass over the post whatever the number
/// of aliases.
#[derive(Debug, Clone)]
pub struct BrandMatcher {
    pub name: String,
    /// Normalized aliases, longest first: what jieba keeps whole.
    aliases: Vec<String>,
    names: Names,
    exclusions: Names,
    /// The characters (in every spelling and width) that an alias can begin with in raw text,
    /// for [`BrandMatcher::occurs_in_raw`]; `None` when an alias begins with something that
    /// normalization could produce from many characters (ASCII punctuation or a digit).
    first_chars: Option<Vec<char>>,
}

/// Where a mention sits in the normalized text, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
}

/// Folded names and the search that finds them.
#[derive(Debug, Clone)]
struct Names {
    /// Indexed by the search's pattern ids.
    names: Vec<Name>,
    search: Search,
}

#[derive(Debug, Clone)]
enum Search {
    None,
    /// One name: a SIMD substring search, cheaper than building an automaton.
    One(Box<Finder<'static>>),
    /// Leftmost-longest: at one place, 度小满金融 wins over 度小满.
    Many(AhoCorasick),
}

/// One name as the search sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    folded: String,
    /// (byte offset in `folded`, most separators allowed there), for the character boundaries
    /// where any are allowed.
    gaps: Vec<(usize, usize)>,
    /// Starts (ends) with an ASCII letter or digit, so needs a word boundary there.
    bounded_start: bool,
    bounded_end: bool,
}

impl Name {
    /// `normalized`: the name as [`normalize`] leaves it.
    fn new(normalized: &str) -> Option<Name> {
        let mut folded = String::with_capacity(normalized.len());
        let mut gaps = Vec::new();
        let mut previous: Option<char> = None;
        let mut written_gap = false;
        for c in normalized.chars() {
            if fold::is_separator(c) || c.is_whitespace() {
                written_gap = previous.is_some();
                continue;
            }
            let c = fold::simplified(c);
            if let Some(p) = previous {
                let allowed = if !p.is_ascii() || !c.is_ascii() {
                    MAX_CJK_GAP
                } else {
                    usize::from(written_gap)
                };
                if allowed > 0 {
                    gaps.push((folded.len(), allowed));
                }
            }
            folded.push(c);
            previous = Some(c);
            written_gap = false;
        }
        let first = folded.chars().next()?;
        let last = folded.chars().next_back()?;
        Some(Name {
            bounded_start: first.is_ascii_alphanumeric(),
            bounded_end: last.is_ascii_alphanumeric(),
            folded,
            gaps,
        })
    }

    fn allowed_gap(&self, offset: usize) -> usize {
        self.gaps
            .iter()
            .find(|&&(at, _)| at == offset)
            .map_or(0, |&(_, n)| n)
    }
}

impl Names {
    fn new(normalized: &[String]) -> Names {
        // Two spellings of one name ("Du Xiaoman", "DuXiaoman") fold alike: one pattern,
        // allowing what either allows.
        let mut names: Vec<Name> = Vec::with_capacity(normalized.len());
        for name in normalized.iter().filter_map(|n| Name::new(n)) {
            match names.iter_mut().find(|n| n.folded == name.folded) {
                Some(same) => {
                    for (at, allowed) in name.gaps {
                        match same.gaps.iter_mut().find(|g| g.0 == at) {
                            Some(g) => g.1 = g.1.max(allowed),
                            None => same.gaps.push((at, allowed)),
                        }
                    }
                }
                None => names.push(name),
            }
        }
        let search = match names.as_slice() {
            [] => Search::None,
            [one] => Search::One(Box::new(Finder::new(one.folded.as_bytes()).into_owned())),
            many => Search::Many(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(StartKind::Unanchored)
                    .build(many.iter().map(|n| &n.folded))
                    .expect("a handful of short patterns always compiles"),
            ),
        };
        Names { names, search }
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The leftmost match in `hay` at or after `from`: (start, end, name).
    fn next_match(&self, hay: &str, from: usize) -> Option<(usize, usize, usize)> {
        match &self.search {
            Search::None => None,
            Search::One(finder) => finder
                .find(&hay.as_bytes()[from..])
                .map(|s| (from + s, from + s + finder.needle().len(), 0)),
            Search::Many(ac) => ac
                .find(Input::new(hay).range(from..).anchored(Anchored::No))
                .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
        }
    }

    /// Calls `found` with the normalized span of every match that keeps the rules (gaps and
    /// word boundaries), in order. With `overlapping`, matches that start inside an earlier
    /// one are found too (exclusions: each one removes what it overlaps).
    fn each(
        &self,
        folded: &Folded,
        text: &str,
        overlapping: bool,
        mut found: impl FnMut(Mention) -> bool,
    ) {
        let hay = folded.text.as_ref();
        let mut from = 0;
        while from < hay.len() {
            let Some((start, end, id)) = self.next_match(hay, from) else {
                return;
            };
            let next_char = start + hay[start..].chars().next().map_or(1, char::len_utf8);
            match self.check(&self.names[id], folded, text, start, end) {
                Some(mention) => {
                    if !found(mention) {
                        return;
                    }
                    from = if overlapping { next_char } else { end };
                }
                // A rejected match may hide a good one that starts inside it.
                None => from = next_char,
            }
        }
    }

    /// The mention folded `start..end` (a match of `name`) stands for, if it keeps the rules.
    fn check(
        &self,
        name: &Name,
        folded: &Folded,
        text: &str,
        start: usize,
        end: usize,
    ) -> Option<Mention> {
        let hay = folded.text.as_ref();
        for (offset, _) in hay[start..end].char_indices().skip(1) {
            let (s, e) = folded.dropped_before(start + offset);
            if s < e && text[s..e].chars().count() > name.allowed_gap(offset) {
                return None;
            }
        }
        let (s, e) = folded.source_span(start, end);
        let before = text[..s].chars().next_back();
        let after = text[e..].chars().next();
        if name.bounded_start && before.is_some_and(|c| c.is_ascii_alphanumeric()) {
            return None; // "xduxiaoman" is not a mention of "duxiaoman"
        }
        if name.bounded_end && after.is_some_and(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        Some(Mention { start: s, end: e })
    }
}

impl BrandMatcher {
    pub fn new(brand: &BrandConfig) -> BrandMatcher {
        BrandMatcher::from_parts(
            &brand.name,
            brand.all_names(),
            brand.exclusions.iter().map(String::as_str),
        )
    }

    /// A matcher for an ad-hoc entity (e.g. one row of a labeled data set).
    pub fn adhoc(name: &str) -> BrandMatcher {
        BrandMatcher::from_parts(name, vec![name], std::iter::empty())
    }

    fn from_parts<'a>(
        name: &str,
        aliases: Vec<&str>,
        exclusions: impl Iterator<Item = &'a str>,
    ) -> BrandMatcher {
        let mut aliases: Vec<String> = aliases
            .into_iter()
            .map(|a| normalize(a).trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        aliases.sort_by_key(|a| std::cmp::Reverse(a.len()));
        aliases.dedup();
        let exclusions: Vec<String> = exclusions
            .map(|e| normalize(e).trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        let names = Names::new(&aliases);
        let first_chars = first_chars(&names);
        BrandMatcher {
            name: name.to_string(),
            aliases,
            exclusions: Names::new(&exclusions),
            names,
            first_chars,
        }
    }

    /// The aliases as they appear in normalized text, for the segmenter's dictionary.
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// A cheap pre-check on raw (not yet normalized) text: false only when no alias can occur.
    /// Most posts in a feed never name the brand; they skip normalization and segmentation.
    pub fn occurs_in_raw(&self, raw: &str) -> bool {
        match &self.first_chars {
            None => true,
            Some(chars) => chars.iter().any(|&c| raw.contains(c)),
        }
    }

    /// Non-overlapping mentions in `text` (already normalized), in order.
    pub fn find(&self, text: &str) -> Vec<Mention> {
        self.find_folded(&fold::fold(text), text)
    }

    /// [`BrandMatcher::find`] over a text already folded (`folded` is `fold(text)`), which
    /// several matchers share.
    pub fn find_folded(&self, folded: &Folded, text: &str) -> Vec<Mention> {
        let mut found = Vec::new();
        self.names.each(folded, text, false, |m| {
            found.push(m);
            true
        });
        if found.is_empty() || self.exclusions.is_empty() {
            return found;
        }
        // Exclusion spans are only looked for in texts that mention the brand at all.
        let mut excluded = Vec::new();
        self.exclusions.each(folded, text, true, |e| {
            excluded.push(e);
            true
        });
        found.retain(|m| !excluded.iter().any(|e| e.start < m.end && m.start < e.end));
        found
    }
}

/// What [`BrandMatcher::occurs_in_raw`] looks for: every raw character that normalizing and
/// folding turn into the first character of a name.
fn first_chars(names: &Names) -> Option<Vec<char>> {
    let mut chars = Vec::new();
    for name in &names.names {
        let first = name.folded.chars().next()?;
        if first.is_ascii_alphabetic() {
            for c in [first, first.to_ascii_uppercase()] {
                chars.push(c);
                chars.extend(char::from_u32(c as u32 - 0x21 + 0xFF01));
            }
        } else if first.is_ascii() {
            return None;
        } else {
            chars.extend(fold::spellings(first));
        }
    }
    chars.sort_unstable();
    chars.dedup();
    Some(chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duxiaoman() -> BrandMatcher {
        BrandMatcher::new(&BrandConfig {
            name: "度小满".into(),
            aliases: vec!["度小满金融".into(), "有钱花".into(), "Du Xiaoman".into()],
            exclusions: vec!["欢度小满".into(), "共度小满".into()],
        })
    }

    #[test]
    fn finds_every_alias_longest_first() {
        let b = duxiaoman();
        let t = normalize("度小满金融旗下有钱花，度小满回应");
        let m = b.find(&t);
        assert_eq!(m.len(), 3);
        assert_eq!(&t[m[0].start..m[0].end], "度小满金融");
        assert_eq!(&t[m[1].start..m[1].end], "有钱花");
    }

    #[test]
    fn the_solar_term_is_not_the_brand() {
        let b = duxiaoman();
        assert!(b
            .find(&normalize("今日小满，麦穗渐满，愿大家欢度小满！"))
            .is_empty());
        assert!(b
            .find(&normalize("小满时节雨水多，天气闷热让人难受"))
            .is_empty());
        assert_eq!(
            b.find(&normalize("欢度小满之际，度小满被曝暴力催收")).len(),
            1
        );
    }

    #[test]
    fn ascii_aliases_need_word_boundaries() {
        let b = duxiaoman();
        assert_eq!(b.find(&normalize("Du Xiaoman fined")).len(), 1);
        assert!(b.find(&normalize("xdu xiaomanx")).is_empty());
    }

    fn brand(name: &str, aliases: &[&str], exclusions: &[&str]) -> BrandMatcher {
        BrandMatcher::new(&BrandConfig {
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            exclusions: exclusions.iter().map(|e| e.to_string()).collect(),
        })
    }

    /// The mentions of `b` in `raw`, as the normalized text spells them.
    fn spans(b: &BrandMatcher, raw: &str) -> Vec<String> {
        let t = normalize(raw);
        assert!(
            b.occurs_in_raw(raw) || b.find(&t).is_empty(),
            "pre-check missed {raw}"
        );
        b.find(&t)
            .iter()
            .map(|m| t[m.start..m.end].to_string())
            .collect()
    }

    #[test]
    fn traditional_spellings_match() {
        let b = duxiaoman();
        assert_eq!(spans(&b, "度小滿暴力催收"), ["度小滿"]);
        assert_eq!(spans(&b, "度小滿金融回應"), ["度小滿金融"]);
        assert_eq!(spans(&b, "有錢花利息太高"), ["有錢花"]);
        let ant = brand("蚂蚁集团", &["花呗", "借呗"], &[]);
        assert_eq!(
            spans(&ant, "螞蟻集團的借唄和花唄"),
            ["螞蟻集團", "借唄", "花唄"]
        );
        // Written in Traditional in the config, found in Simplified text too.
        let tw = brand("國泰金控", &[], &[]);
        assert_eq!(spans(&tw, "国泰金控公告"), ["国泰金控"]);
        assert!(tw.occurs_in_raw("国泰金控") && tw.occurs_in_raw("國泰金控"));
    }

    #[test]
    fn spaced_and_dotted_chinese_names_match() {
        let b = duxiaoman();
        assert_eq!(spans(&b, "曝光度 小 满暴力催收"), ["度 小 满"]);
        assert_eq!(spans(&b, "度·小·满又来了"), ["度·小·满"]);
        assert_eq!(spans(&b, "度*小*滿 催收"), ["度*小*滿"]);
        assert_eq!(spans(&b, "度\u{3000}小\u{3000}满"), ["度 小 满"]);
        // Too far apart to be one name, or split by a clause mark: not a mention.
        assert!(spans(&b, "度 ·· 小满").is_empty());
        assert!(spans(&b, "度，小满").is_empty());
        assert!(spans(&b, "度\n小满").is_empty());
    }

    #[test]
    fn full_width_latin_is_folded_for_matching() {
        let b = duxiaoman();
        assert_eq!(spans(&b, "ＤＵ ＸＩＡＯＭＡＮ fined"), ["du xiaoman"]);
        let c = brand("ABC123", &[], &[]);
        assert_eq!(spans(&c, "买了ＡＢＣ１２３的产品"), ["abc123"]);
    }

    #[test]
    fn latin_handles_hashtags_and_hyphens_match() {
        let b = brand("Virgin America", &[], &[]);
        for text in [
            "@VirginAmerica lost my bag",
            "so angry #virgin_america",
            "Virgin-America delayed again",
            "virgin.america support",
            "VIRGIN AMERICA",
        ] {
            assert_eq!(spans(&b, text).len(), 1, "{text}");
        }
        // Only where the name has its space, and only one separator.
        assert!(spans(&b, "vir gin america").is_empty());
        assert!(spans(&b, "virgin. america").is_empty());
        assert!(spans(&b, "@virginamericas").is_empty(), "word boundary");
        let d = duxiaoman();
        assert_eq!(
            spans(&d, "complaints about #DuXiaoman today"),
            ["duxiaoman"]
        );
        let u = brand("United", &[], &[]);
        assert!(
            spans(&u, "unit ed").is_empty(),
            "no gap inside a one-word name"
        );
        assert!(spans(&u, "disunited").is_empty());
    }

    #[test]
    fn exclusions_still_win() {
        let united = brand("United", &["United Airlines"], &["United Nations"]);
        assert!(spans(&united, "The United Nations said").is_empty());
        assert!(spans(&united, "#UnitedNations summit").is_empty());
        assert!(spans(&united, "@united_nations summit").is_empty());
        assert_eq!(spans(&united, "United lost my bag"), ["united"]);
        assert_eq!(
            spans(&united, "@united_airlines lost my bag"),
            ["united_airlines"]
        );
        assert_eq!(
            spans(&united, "United Nations staff flew United"),
            ["united"],
            "the other mention stays"
        );
        // A full stop and a space are no gap inside a name: that United is the airline.
        assert_eq!(spans(&united, "I flew united. nations differ"), ["united"]);
        let b = duxiaoman();
        assert!(
            spans(&b, "大家歡度小滿").is_empty(),
            "traditional exclusion"
        );
        assert!(spans(&b, "欢 度 小 满").is_empty(), "spaced exclusion");
    }

    #[test]
    fn single_alias_and_rejected_candidates() {
        // One name (the substring search path): a rejected match does not hide the next one.
        let u = brand("ab", &[], &[]);
        assert_eq!(spans(&u, "xab ab"), ["ab"]);
        let u = brand("United", &["united kingdom air"], &[]);
        assert_eq!(spans(&u, "unitedx united"), ["united"]);
    }
}
