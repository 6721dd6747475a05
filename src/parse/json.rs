//! JSON APIs read through a mapping: a path to the list of items, and within each item a path
//! per field. Paths are JSON pointers (`/data/list`) or dotted (`data.list`, `user.0.name`).
//!
//! The URL side lives here too, because it is part of the same mapping: a query template's
//! `{brand}` becomes each watched brand's name, percent-encoded as UTF-8, and `{page}` the page
//! number.

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::date::{self, Zone};
use super::{ParseError, ParseErrorKind};
use crate::post::{plain_text, Post};

/// A path into a JSON document, as written in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub text: String,
    /// Unescaped keys (or array indices), from the root.
    steps: Vec<String>,
}

impl JsonPath {
    /// `/data/list` (RFC 6901, `~0` and `~1` escapes) or `data.list`. The empty pointer `""` or
    /// `.` is the whole document.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let steps = if text.is_empty() || text == "." {
            Vec::new()
        } else if let Some(pointer) = text.strip_prefix('/') {
            pointer
                .split('/')
                .map(|token| {
                    unescape_pointer(token).ok_or_else(|| {
                        format!("invalid JSON pointer {text:?}: \"~\" must be followed by 0 or 1")
                    })
                })
                .collect::<Result<_, _>>()?
        } else {
            let steps: Vec<String> = text.split('.').map(str::to_string).collect();
            if steps.iter().any(|s| s.is_empty()) {
                return Err(format!(
                    "invalid path {text:?}: an empty step; write \"data.list\" or \"/data/list\""
                ));
            }
            steps
        };
        Ok(JsonPath {
            text: text.to_string(),
            steps,
        })
    }

    /// The value at this path, or the step at which it went missing.
    fn find<'v>(&self, root: &'v Value) -> Result<&'v Value, String> {
        let mut node = root;
        for (i, step) in self.steps.iter().enumerate() {
            let next = match node {
                Value::Object(map) => map.get(step),
                Value::Array(items) => step.parse::<usize>().ok().and_then(|n| items.get(n)),
                _ => None,
            };
            node = next.ok_or_else(|| {
                let at = if i == 0 {
                    "the top level".to_string()
                } else {
                    format!("{:?}", self.steps[..i].join("."))
                };
                format!(
                    "does not exist: no {step:?} under {at} (found {})",
                    kind_of(node)
                )
            })?;
        }
        Ok(node)
    }
}

fn unescape_pointer(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next()? {
                '0' => out.push('~'),
                '1' => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The mapping of a `kind = "json"` source.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRules {
    /// Where the list of items is.
    pub items: JsonPath,
    /// Each item's stable id, when the API has one (it becomes the post's GUID).
    pub id: Option<JsonPath>,
    pub title: Option<JsonPath>,
    pub link: Option<JsonPath>,
    pub summary: Option<JsonPath>,
    /// A date string in any form [`date::parse_date`] reads, or a unix time (s or ms).
    pub time: Option<JsonPath>,
    pub author: Option<JsonPath>,
}

/// Reads the posts of one API response. `request_url` resolves relative links and prefixes ids,
/// so two endpoints' item 1 are not one post.
pub fn parse_response(
    source: &str,
    text: &str,
    request_url: &str,
    rules: &JsonRules,
    zone: Zone,
    fetched_at: DateTime<Utc>,
) -> Result<Vec<Post>, ParseError> {
    let fail = |kind| ParseError::new(source, kind);
    let document: Value = serde_json::from_str(text).map_err(|e| {
        if super::is_login_wall(text.as_bytes()) {
            fail(ParseErrorKind::LoginWall(format!(
                "{request_url} answered with a password form instead of JSON"
            )))
        } else {
            fail(ParseErrorKind::MalformedJson(e.to_string()))
        }
    })?;
    let missing = |field, path: &JsonPath, problem| {
        fail(ParseErrorKind::MissingPath {
            field,
            path: path.text.clone(),
            problem,
        })
    };
    let items = match rules
        .items
        .find(&document)
        .map_err(|p| missing("items", &rules.items, p))?
    {
        Value::Array(items) => items,
        // An API that found nothing often says null rather than [].
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(missing(
                "items",
                &rules.items,
                format!("is {}, not an array", kind_of(other)),
            ))
        }
    };
    let base = reqwest::Url::parse(request_url).ok();
    let host = base.as_ref().and_then(|u| u.host_str()).unwrap_or_default();
    let mut posts = Vec::with_capacity(items.len());
    let mut found_any = [false; 6];
    for item in items {
        let mut field = |i: usize, path: &Option<JsonPath>| -> Option<&Value> {
            let value = path.as_ref()?.find(item).ok()?;
            found_any[i] = true;
            Some(value)
        };
        let id = field(0, &rules.id).and_then(scalar_text);
        let title = field(1, &rules.title)
            .and_then(scalar_text)
            .map(|t| plain_text(&t))
            .unwrap_or_default();
        let url = field(2, &rules.link)
            .and_then(scalar_text)
            .and_then(|l| resolve(base.as_ref(), &l));
        let body = field(3, &rules.summary)
            .and_then(scalar_text)
            .map(|s| plain_text(&s))
            .unwrap_or_default();
        let published = field(4, &rules.time).and_then(|v| match v {
            Value::Number(n) => n.as_i64().and_then(date::unix),
            Value::String(s) => date::parse_date(s, zone, fetched_at),
            _ => None,
        });
        let author = field(5, &rules.author)
            .and_then(scalar_text)
            .map(|a| plain_text(&a))
            .filter(|a| !a.is_empty());
        if title.is_empty() && body.is_empty() && url.is_none() {
            continue;
        }
        posts.push(Post {
            source: source.to_string(),
            guid: id.map(|id| format!("{host}:{id}")),
            url,
            title,
            body,
            published: date::checked(source, published, fetched_at),
            fetched_at,
            author,
        });
    }
    // A field path that holds in no item at all is a mapping that does not fit this API.
    if !items.is_empty() {
        for (i, (name, path)) in [
            ("id", &rules.id),
            ("title", &rules.title),
            ("link", &rules.link),
            ("summary", &rules.summary),
            ("time", &rules.time),
            ("author", &rules.author),
        ]
        .into_iter()
        .enumerate()
        {
            if let (Some(path), false) = (path, found_any[i]) {
                let problem = path.find(&items[0]).err().unwrap_or_default();
                return Err(missing(name, path, format!("{problem} in any item")));
            }
        }
    }
    Ok(posts)
}

/// A string, number or boolean as text; objects and arrays are not a field's value.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn resolve(base: Option<&reqwest::Url>, link: &str) -> Option<String> {
    let url = match base {
        Some(base) => base.join(link.trim()).ok()?,
        None => reqwest::Url::parse(link.trim()).ok()?,
    };
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// What a template's `{brand}` becomes: everything but ASCII letters, digits and `-._~`
/// percent-encoded from UTF-8, so it is safe in a path segment and in a query value alike.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL of one request: `{brand}` and `{page}` filled in.
pub fn expand_url(template: &str, brand: Option<&str>, page: u32) -> String {
    let mut url = template.replace("{page}", &page.to_string());
    if let Some(brand) = brand {
        url = url.replace(
            "{brand}",
            &utf8_percent_encode(brand, COMPONENT).to_string(),
        );
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const RESPONSE: &str = r#"{"code":0,"data":{"total":3,"list":[
        {"id":101,"title":"度小满 暴力催收","url":"/c/101","content":"<p>每天打电话</p>",
         "created_at":"2024-03-05 09:30","user":{"name":"张三"}},
        {"id":102,"title":"有钱花 利息高","url":"https://other.example/c/102",
         "created_at":1709600000,"user":{"name":"李四"}},
        {"id":103,"title":"","url":null,"created_at":"3分钟前","user":{}}
    ]}}"#;

    fn fetched() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 5, 4, 0, 0).unwrap()
    }

    fn rules(items: &str) -> JsonRules {
        let p = |t: &str| Some(JsonPath::parse(t).unwrap());
        JsonRules {
            items: JsonPath::parse(items).unwrap(),
            id: p("id"),
            title: p("title"),
            link: p("/url"),
            summary: p("content"),
            time: p("created_at"),
            author: p("user.name"),
        }
    }

    #[test]
    fn items_and_fields_are_mapped_by_pointer_or_dotted_path() {
        for items in ["/data/list", "data.list"] {
            let posts = parse_response(
                "api",
                RESPONSE,
                "https://api.example.com/search?q=x",
                &rules(items),
                Zone::default(),
                fetched(),
            )
            .unwrap();
            assert_eq!(posts.len(), 2, "the empty third item is skipped");
            assert_eq!(posts[0].guid.as_deref(), Some("api.example.com:101"));
            assert_eq!(
                posts[0].url.as_deref(),
                Some("https://api.example.com/c/101")
            );
            assert_eq!(posts[0].body, "每天打电话");
            assert_eq!(posts[0].author.as_deref(), Some("张三"));
            assert_eq!(
                posts[0].published.unwrap().to_rfc3339(),
                "2024-03-05T01:30:00+00:00"
            );
            assert_eq!(posts[1].published.unwrap().timestamp(), 1_709_600_000);
            assert_eq!(posts[1].url.as_deref(), Some("https://other.example/c/102"));
        }
    }

    #[test]
    fn a_missing_path_is_named() {
        let err = parse_response(
            "api",
            RESPONSE,
            "http://h/",
            &rules("/data/items"),
            Zone::default(),
            fetched(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"api\"") && text.contains("/data/items") && text.contains("\"items\""),
            "{text}"
        );
        let mut r = rules("data.list");
        r.title = Some(JsonPath::parse("subject").unwrap());
        let err = parse_response("api", RESPONSE, "http://h/", &r, Zone::default(), fetched())
            .unwrap_err();
        assert!(err.to_string().contains("title path \"subject\""), "{err}");
        let err = parse_response(
            "api",
            RESPONSE,
            "http://h/",
            &rules("data.total"),
            Zone::default(),
            fetched(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not an array"), "{err}");
    }

    #[test]
    fn malformed_json_and_login_pages_are_told_apart() {
        let err = parse_response(
            "api",
            "{\"data\": [1, 2",
            "http://h/",
            &rules("data"),
            Zone::default(),
            fetched(),
        )
        .unwrap_err();
        assert!(
            matches!(err.kind, ParseErrorKind::MalformedJson(_)),
            "{err}"
        );
        assert!(err.to_string().contains("api"));
        let login = "<html><form><input type=password></form></html>";
        let err = parse_response(
            "api",
            login,
            "http://h/",
            &rules("data"),
            Zone::default(),
            fetched(),
        )
        .unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::LoginWall(_)), "{err}");
    }

    #[test]
    fn null_items_are_an_empty_page() {
        let posts = parse_response(
            "api",
            r#"{"data":{"list":null}}"#,
            "http://h/",
            &rules("data.list"),
            Zone::default(),
            fetched(),
        )
        .unwrap();
        assert!(posts.is_empty());
    }

    #[test]
    fn paths_are_checked() {
        assert_eq!(JsonPath::parse("/a~1b/~0c").unwrap().steps, ["a/b", "~c"]);
        assert!(JsonPath::parse("/a/~2").unwrap_err().contains("~"));
        assert!(JsonPath::parse("data..list")
            .unwrap_err()
            .contains("empty step"));
        assert!(JsonPath::parse("").unwrap().steps.is_empty());
    }

    #[test]
    fn brand_names_are_percent_encoded_as_utf8() {
        assert_eq!(
            expand_url(
                "https://s.example/api?q={brand}&page={page}",
                Some("度小满 金融"),
                2
            ),
            "https://s.example/api?q=%E5%BA%A6%E5%B0%8F%E6%BB%A1%20%E9%87%91%E8%9E%8D&page=2"
        );
        assert_eq!(
            expand_url("https://r.example/weibo/keyword/{brand}", Some("A&B/C"), 1),
            "https://r.example/weibo/keyword/A%26B%2FC"
        );
    }
}
