//! Bytes → `Vec<Post>`, one parser per format. Pure functions: no network, no store.

pub mod feed;

/// Why a response could not be turned into posts. Names the source so a bad feed in a list of
/// hundreds is easy to find.
#[derive(Debug, thiserror::Error)]
#[error("source {source_name:?}: {kind}")]
pub struct ParseError {
    pub source_name: String,
    pub kind: ParseErrorKind,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("not a feed (RSS, Atom or JSON Feed): {0}")]
    NotAFeed(String),
}
