//! The analyzer the daemon's pollers share, replaced whole when an operator reloads the
//! lexicons and learned weights (SIGHUP). Each poll takes the current one for its batch, so a
//! reload never changes the judgments within one batch.

use std::sync::{Arc, RwLock};

use anyhow::Result;

use super::Analyzer;
use crate::config::{AnalysisConfig, BrandConfig};

#[derive(Clone)]
pub struct SharedAnalyzer {
    current: Arc<RwLock<Arc<Analyzer>>>,
}

impl SharedAnalyzer {
    pub fn new(analyzer: Analyzer) -> SharedAnalyzer {
        SharedAnalyzer {
            current: Arc::new(RwLock::new(Arc::new(analyzer))),
        }
    }

    /// The analyzer to judge the next batch with.
    pub fn current(&self) -> Arc<Analyzer> {
        // A poisoned lock only means a panic elsewhere while swapping; the Arc inside is whole.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Builds a new analyzer from `analysis` (the files in `lexicon_dir` as they are now) and
    /// puts it in place. A file that does not load is an error naming it, and the analyzer in
    /// use stays. Slow (jieba's dictionary): call it off the async threads.
    pub fn reload(&self, analysis: &AnalysisConfig, brands: &[BrandConfig]) -> Result<Reloaded> {
        let analyzer = Analyzer::from_config(analysis, brands)?;
        let reloaded = Reloaded {
            brand_weights: analyzer.learned().map_or(0, |m| m.len()),
            general_weights: analyzer.general().map_or(0, |m| m.len()),
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(analyzer);
        Ok(reloaded)
    }
}

/// What a reload put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub brand_weights: usize,
    pub general_weights: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> (AnalysisConfig, Vec<BrandConfig>) {
        let toml = format!(
            "[analysis]\nlexicon_dir = \"{}\"\n\n[[brands]]\nname = \"星辰贷\"\n",
            dir.display()
        );
        let origin = crate::config::Origin::File(dir.join("sources.toml"));
        let config = crate::config::Config::parse(&toml, origin).expect("a valid config");
        (config.analysis, config.brands)
    }

    const GOOD: &str = "__targeted__\t1\n__bias__\t0.5\n展期\t2.0\n排队\t0.5\n";

    #[test]
    fn a_good_file_replaces_the_weights_and_a_broken_one_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let (analysis, brands) = config(dir.path());
        std::fs::write(dir.path().join("learned.tsv"), GOOD).unwrap();
        let shared = SharedAnalyzer::new(Analyzer::from_config(&analysis, &brands).unwrap());
        let before = shared.current();
        assert_eq!(before.learned().map(|m| m.len()), Some(2));

        std::fs::write(
            dir.path().join("learned.tsv"),
            format!("{GOOD}展期2\t3.0\n逾期\t1.0\n"),
        )
        .unwrap();
        let reloaded = shared.reload(&analysis, &brands).unwrap();
        assert_eq!(reloaded.brand_weights, 4);
        assert_eq!(shared.current().learned().map(|m| m.len()), Some(4));
        // A batch that took the old analyzer keeps judging with it.
        assert_eq!(before.learned().map(|m| m.len()), Some(2));

        std::fs::write(
            dir.path().join("learned.tsv"),
            "__bias__\t0.5\n展期\tlots\n",
        )
        .unwrap();
        let err = format!("{:#}", shared.reload(&analysis, &brands).unwrap_err());
        assert!(
            err.contains("learned.tsv"),
            "the error names the file: {err}"
        );
        assert_eq!(
            shared.current().learned().map(|m| m.len()),
            Some(4),
            "the weights in use stay"
        );
    }
}
