//! Bytes → `Vec<Post>`, one parser per format: feeds ([`feed`]), list pages read with CSS
//! selectors ([`html`]) and JSON APIs read through a field mapping ([`json`]); [`date`] reads the
//! dates all of them find. Pure functions: no network, no store.

pub mod date;
pub mod feed;
pub mod html;
pub mod json;

/// Why a response could not be turned into posts. Names the source so a bad feed in a list of
/// hundreds is easy to find.
#[derive(Debug, thiserror::Error)]
#[error("source {source_name:?}: {kind}")]
pub struct ParseError {
    pub source_name: String,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub fn new(source: &str, kind: ParseErrorKind) -> ParseError {
        ParseError {
            source_name: source.to_string(),
            kind,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("not a feed (RSS, Atom or JSON Feed): {0}")]
    NotAFeed(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The page changed, or is not the page the selectors were written for.
    #[error("the {field} selector {selector:?} matches nothing on the page")]
    NothingMatched {
        field: &'static str,
        selector: String,
    },
    #[error("the {field} path {path:?} {problem}")]
    MissingPath {
        field: &'static str,
        path: String,
        problem: String,
    },
    /// A login page or a password form where content was expected: the source's cookie has
    /// expired, or it now needs one.
    #[error("cookie expired or login required: {0}")]
    LoginWall(String),
}

/// Whether a document where a feed, JSON or a list page was expected is a login page: an HTML
/// form with a password field. Read from the first 64 KiB, where such forms are.
pub fn is_login_wall(text: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&text[..text.len().min(64 * 1024)]).to_ascii_lowercase();
    let has_form = head.contains("<form");
    let password = head.contains("type=\"password\"")
        || head.contains("type='password'")
        || head.contains("type=password");
    has_form && password
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_form_is_a_login_wall() {
        let page = br#"<html><body><form action="/login"><input name="u"><input TYPE="password" name="p"></form></body></html>"#;
        assert!(super::is_login_wall(page));
        assert!(!super::is_login_wall(
            b"<rss><channel><title>password</title></channel></rss>"
        ));
        assert!(!super::is_login_wall(b"<form><input type=\"text\"></form>"));
    }
}
