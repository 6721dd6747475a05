//! One poll of one source, whatever its kind: the requests it makes (one per watched brand when
//! its URL holds `{brand}`, pages 1 to `pages` when it holds `{page}`), each decoded and parsed,
//! then the posts not seen before; and for an html source with `follow`, each new post's own
//! page read for its body. Every request goes through the [`Fetcher`], so the per-host and
//! global caps hold for followed pages too.
//!
//! Parsing runs on the blocking pool: it is CPU work, and `scraper::Html` is not `Send`.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::config::{SourceConfig, SourceKind};
use crate::dedupe;
use crate::fetch::{CharsetError, Fetched, Fetcher, RequestOptions, Validators};
use crate::parse::{self, ParseError, ParseErrorKind};
use crate::post::Post;
use crate::store::Store;

/// The most item pages one poll follows: a list page that suddenly shows 500 new items must
/// not turn one poll into 500 requests to one site. The rest keep their list summary.
pub const MAX_FOLLOW: usize = 30;

/// What one poll found.
#[derive(Debug)]
pub struct Collected {
    /// The validators to keep for the next conditional GET; None after a 304 (keep the old
    /// ones). Sources that make several requests per poll do not use them.
    pub validators: Option<Validators>,
    /// Items read, new or not.
    pub items: u64,
    /// Posts never recorded before.
    pub fresh: Vec<Post>,
}

/// Polls `source` once.
pub async fn poll(
    source: &SourceConfig,
    fetcher: &Fetcher,
    store: &Store,
    validators: &Validators,
) -> Result<Collected> {
    let requests = source.request_urls();
    let single = requests.len() == 1;
    let options = RequestOptions {
        headers: &source.headers.0,
        user_agent: source.user_agent.as_deref(),
    };
    let mut posts = Vec::new();
    let mut kept_validators = None;
    let mut exhausted_brand: Option<Option<String>> = None;
    for request in &requests {
        // Paging stops at the first empty page, for that brand.
        if request.page > 1 && exhausted_brand.as_ref() == Some(&request.brand) {
            continue;
        }
        let sent = if single {
            validators.clone()
        } else {
            Validators::default()
        };
        let what = match (&request.brand, request.page) {
            _ if single => String::new(),
            (Some(brand), page) if page > 1 => format!(" ({brand:?}, page {page})"),
            (Some(brand), _) => format!(" ({brand:?})"),
            (None, page) => format!(" (page {page})"),
        };
        let fetched = fetcher
            .fetch_with(&request.url, &sent, options)
            .await
            .with_context(|| format!("source {:?}{what}", source.name))?;
        let (bytes, content_type, got) = match fetched {
            Fetched::NotModified if single => {
                return Ok(Collected {
                    validators: None,
                    items: 0,
                    fresh: Vec::new(),
                })
            }
            // Not asked for: a server that answers 304 without validators has nothing new.
            Fetched::NotModified => continue,
            Fetched::Body {
                bytes,
                content_type,
                validators,
            } => (bytes, content_type, validators),
        };
        if single {
            kept_validators = Some(got);
        }
        let page_posts = parse_response(source, bytes, content_type, &request.url, Utc::now())
            .await
            .with_context(|| format!("{}{what}", request.url));
        match page_posts {
            Ok(found) if found.is_empty() => {
                exhausted_brand = Some(request.brand.clone());
            }
            Ok(found) => posts.extend(found),
            // A later page that no longer has the list is the end of the results.
            Err(e) if request.page > 1 && nothing_matched(&e) => {
                exhausted_brand = Some(request.brand.clone());
            }
            Err(e) => return Err(e),
        }
    }
    let items = posts.len() as u64;
    let mut fresh = dedupe::unseen(store, posts)?;
    if let SourceKind::Html(rules) = &source.kind {
        if let (true, Some(body)) = (rules.follow, &rules.body) {
            follow(source, fetcher, options, body, &mut fresh).await;
        }
    }
    Ok(Collected {
        validators: kept_validators.or_else(|| (!single).then(Validators::default)),
        items,
        fresh,
    })
}

fn nothing_matched(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<ParseError>()
            .is_some_and(|p| matches!(p.kind, ParseErrorKind::NothingMatched { field: "item", .. }))
    })
}

/// Decodes a response and reads it as the source's kind. A body that did not decode cleanly and
/// then did not parse is reported as a charset problem; a login page where a feed or JSON was
/// expected as a login wall.
pub async fn parse_response(
    source: &SourceConfig,
    bytes: Vec<u8>,
    content_type: Option<String>,
    url: &str,
    fetched_at: DateTime<Utc>,
) -> Result<Vec<Post>> {
    let (name, kind, zone, url) = (
        source.name.clone(),
        source.kind.clone(),
        source.time_zone,
        url.to_string(),
    );
    tokio::task::spawn_blocking(move || -> Result<Vec<Post>> {
        let decoded = crate::fetch::decode(&bytes, content_type.as_deref());
        tracing::debug!(source = %name, charset = decoded.encoding.name(), from = ?decoded.from, "decoded");
        let parsed = match &kind {
            SourceKind::Feed => parse::feed::parse_feed(&name, &decoded.utf8, fetched_at),
            SourceKind::Html(rules) => {
                let text = String::from_utf8_lossy(&decoded.utf8);
                parse::html::parse_list(&name, &text, &url, rules, zone, fetched_at)
            }
            SourceKind::Json(rules) => {
                let text = String::from_utf8_lossy(&decoded.utf8);
                parse::json::parse_response(&name, &text, &url, rules, zone, fetched_at)
            }
        };
        match parsed {
            Ok(posts) => Ok(posts),
            Err(e) if matches!(e.kind, ParseErrorKind::NotAFeed(_)) && parse::is_login_wall(&decoded.utf8) => {
                Err(ParseError::new(
                    &name,
                    ParseErrorKind::LoginWall(format!("{url} answered with a password form instead of a feed")),
                )
                .into())
            }
            Err(e) if decoded.malformed && !matches!(e.kind, ParseErrorKind::LoginWall(_)) => {
                Err(anyhow::Error::new(e).context(CharsetError {
                    charset: decoded.encoding.name(),
                    from: decoded.from,
                }))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
    .context("the parser panicked")?
}

/// Reads each new post's own page for its body. A page that fails keeps the post with its list
/// summary, and is logged: one broken article must not cost the whole list.
async fn follow(
    source: &SourceConfig,
    fetcher: &Fetcher,
    options: RequestOptions<'_>,
    body: &crate::parse::html::Css,
    fresh: &mut [Post],
) {
    let mut followed = 0;
    for post in fresh.iter_mut() {
        let Some(url) = post.url.clone() else {
            continue;
        };
        if followed == MAX_FOLLOW {
            tracing::info!(source = %source.name, limit = MAX_FOLLOW, "more new items than one poll follows; the rest keep their list summary");
            break;
        }
        followed += 1;
        let page = match fetcher
            .fetch_with(&url, &Validators::default(), options)
            .await
        {
            Ok(Fetched::Body {
                bytes,
                content_type,
                ..
            }) => (bytes, content_type),
            Ok(Fetched::NotModified) => continue,
            Err(e) => {
                tracing::warn!(source = %source.name, %url, error = %e, "could not follow an item's link");
                continue;
            }
        };
        let (name, selector) = (source.name.clone(), body.clone());
        let read = tokio::task::spawn_blocking(move || {
            let decoded = crate::fetch::decode(&page.0, page.1.as_deref());
            parse::html::parse_body(&name, &String::from_utf8_lossy(&decoded.utf8), &selector)
        })
        .await;
        match read {
            Ok(Ok(text)) => post.body = text,
            Ok(Err(e)) => {
                tracing::warn!(source = %source.name, %url, error = %e, "could not read an item's page")
            }
            Err(e) => {
                tracing::warn!(source = %source.name, %url, error = %e, "reading an item's page panicked")
            }
        }
    }
}
