//! Finding a brand in text: every alias, minus the phrases where the alias means something
//! else (度小满 inside 欢度小满 is a festival greeting, not the lender).

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem::Finder;

use crate::config::BrandConfig;

use super::text::normalize;

/// A brand compiled for matching against normalized text: one automaton over all aliases and
/// one over the exclusions, so finding a brand is a single pass over the post whatever the
/// number of aliases.
#[derive(Debug, Clone)]
pub struct BrandMatcher {
    pub name: String,
    /// Normalized aliases, longest first.
    aliases: Vec<String>,
    /// Leftmost-longest: at one place, 度小满金融 wins over 度小满. `None` for a single alias,
    /// which `alias_finder` (a SIMD substring search, cheaper than building an automaton)
    /// looks for.
    alias_automaton: Option<AhoCorasick>,
    alias_finder: Option<Finder<'static>>,
    exclusion_automaton: Option<AhoCorasick>,
}

/// Where a mention sits in the normalized text, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
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
        let alias_automaton = (aliases.len() > 1).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&aliases)
                .expect("a handful of short patterns always compiles")
        });
        let alias_finder = match aliases.as_slice() {
            [alias] => Some(Finder::new(alias.as_bytes()).into_owned()),
            _ => None,
        };
        let exclusion_automaton = (!exclusions.is_empty()).then(|| {
            AhoCorasick::new(&exclusions).expect("a handful of short patterns always compiles")
        });
        BrandMatcher {
            name: name.to_string(),
            aliases,
            alias_automaton,
            alias_finder,
            exclusion_automaton,
        }
    }

    /// The aliases as they appear in normalized text, for the segmenter's dictionary.
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// A cheap pre-check on raw (not yet normalized) text: false only when no alias can occur.
    /// Most posts in a feed never name the brand; they skip normalization and segmentation.
    pub fn occurs_in_raw(&self, raw: &str) -> bool {
        // Normalization only lowercases ASCII and folds full-width forms, so a raw text without
        // any alias's first character (in either form) cannot contain an alias.
        self.aliases.iter().any(|a| {
            let Some(first) = a.chars().next() else {
                return false;
            };
            if first.is_ascii_alphabetic() {
                let upper = first.to_ascii_uppercase();
                let wide = |c: char| char::from_u32(c as u32 - 0x21 + 0xFF01);
                raw.contains(first)
                    || raw.contains(upper)
                    || wide(first).is_some_and(|w| raw.contains(w))
                    || wide(upper).is_some_and(|w| raw.contains(w))
            } else if first.is_ascii() {
                true
            } else {
                raw.contains(first)
            }
        })
    }

    /// Non-overlapping mentions in `text` (already normalized), in order.
    pub fn find(&self, text: &str) -> Vec<Mention> {
        let mut found = Vec::new();
        let mut excluded: Option<Vec<(usize, usize)>> = None;
        let candidates: Box<dyn Iterator<Item = (usize, usize, usize)>> =
            match &self.alias_automaton {
                Some(ac) => Box::new(
                    ac.find_iter(text)
                        .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
                ),
                None => match &self.alias_finder {
                    Some(finder) => Box::new(
                        finder
                            .find_iter(text.as_bytes())
                            .map(|s| (s, s + finder.needle().len(), 0)),
                    ),
                    None => Box::new(std::iter::empty()),
                },
            };
        for (start, end, pattern) in candidates {
            let mention = Mention { start, end };
            if self.aliases[pattern].is_ascii() && !ascii_word_bounded(text, mention) {
                continue; // "duxiaomanx" is not a mention of "duxiaoman"
            }
            if let Some(ex) = &self.exclusion_automaton {
                // Exclusion spans are only computed for texts that mention the brand at all.
                let spans = excluded.get_or_insert_with(|| {
                    ex.find_overlapping_iter(text)
                        .map(|e| (e.start(), e.end()))
                        .collect()
                });
                if spans
                    .iter()
                    .any(|&(s, e)| s < mention.end && mention.start < e)
                {
                    continue;
                }
            }
            found.push(mention);
        }
        found
    }
}

fn ascii_word_bounded(text: &str, m: Mention) -> bool {
    let before = text[..m.start].chars().next_back();
    let after = text[m.end..].chars().next();
    !before.is_some_and(|c| c.is_ascii_alphanumeric())
        && !after.is_some_and(|c| c.is_ascii_alphanumeric())
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
}
