//! `yuqing demo`: a scripted crisis about 度小满, replayed by loopback feed servers, so that a
//! newcomer with no internet and no bot token sees the real pipeline open an incident within a
//! minute.
//!
//! The [`Script`] is a timeline of posts on three sources (a news feed, a complaint platform, a
//! social feed): about ten calm seconds (news, happy customers, unrelated chatter, and the solar
//! term 欢度小满, which must not count), then thirty seconds of complaints about violent debt
//! collection, with reposts. The [`DemoServer`] serves each source as RSS 2.0 on 127.0.0.1,
//! holding back every post whose offset is still ahead of its clock, so the feeds grow as the
//! script plays. The clock is injected: the demo passes real elapsed time, tests step it.
//! [`demo_config`] writes the `sources.toml` text that points the daemon at the server.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How long [`DemoServer::stop`] waits for open connections to finish before cutting them.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One source of the script, served as RSS 2.0 at `/feed/<slug>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptSource {
    /// The source's name in the config, the alerts and the logs ("黑猫投诉").
    pub name: String,
    /// ASCII path segment of its feed.
    pub slug: String,
    /// The channel description.
    pub description: String,
    /// The source's `weight` in the demo config.
    pub weight: f64,
}

/// Where a post sits in the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the crisis: nothing here is negative about the brand.
    Calm,
    /// The crisis: every post is a complaint about the brand, or a repost of one.
    Burst,
}

/// One post of the script.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptPost {
    /// Stable feed GUID, also the last segment of its link.
    pub guid: String,
    /// The [`ScriptSource::name`] it appears on.
    pub source: String,
    /// When it appears, counted from the start of the script.
    pub offset: Duration,
    pub title: String,
    pub body: String,
    /// The GUID of the post this one reposts.
    pub repost_of: Option<String>,
    pub phase: Phase,
}

/// A scripted timeline of posts on a few sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub sources: Vec<ScriptSource>,
    /// In order of offset.
    pub posts: Vec<ScriptPost>,
}

/// Prefix of a repost's title and body, as on Weibo.
pub const REPOST_PREFIX: &str = "转发：";

impl Script {
    /// The crisis behind `yuqing demo`: calm for ten seconds, then complaints about 度小满's
    /// debt collection every two seconds or so until 38 s, three of them reposted.
    pub fn default_crisis() -> Script {
        const NEWS: &str = "财经新闻";
        const COMPLAINTS: &str = "黑猫投诉";
        const WEIBO: &str = "微博";
        let sources = vec![
            ScriptSource {
                name: NEWS.into(),
                slug: "news".into(),
                description: "财经新闻快讯（演示数据）".into(),
                weight: 1.0,
            },
            ScriptSource {
                name: COMPLAINTS.into(),
                slug: "complaints".into(),
                description: "消费投诉平台（演示数据）".into(),
                weight: 2.0,
            },
            ScriptSource {
                name: WEIBO.into(),
                slug: "weibo".into(),
                description: "微博关键词：度小满（演示数据）".into(),
                weight: 1.5,
            },
        ];
        use Phase::{Burst, Calm};
        let mut posts = vec![
            // Calm: the brand in ordinary news and contented use, and chatter without it.
            post(
                "calm-results",
                NEWS,
                0,
                Calm,
                "度小满发布二季度经营数据",
                "度小满金融今日公布二季度经营数据，有钱花服务的小微经营者和个人用户继续增长，\
                 风控指标保持稳定。",
            ),
            post(
                "calm-outing",
                WEIBO,
                2,
                Calm,
                "周末去郊外踏青",
                "油菜花开得正好，带上孩子和爸妈在田埂上走了一下午，晒得暖洋洋的。",
            ),
            // The solar term, not the lender: an exclusion in the config.
            post(
                "calm-solar-term",
                WEIBO,
                3,
                Calm,
                "今天小满，小得盈满",
                "欢度小满，记得吃点苦菜、早点睡，麦子快要熟了～",
            ),
            post(
                "calm-takeaway",
                COMPLAINTS,
                5,
                Calm,
                "外卖超时已妥善处理",
                "晚饭外卖超时四十分钟，联系平台客服后很快给了补偿，处理得还算及时。",
            ),
            post(
                "calm-app",
                NEWS,
                6,
                Calm,
                "有钱花App上线还款日历",
                "有钱花近日更新App，新增还款日历和提前还款试算，用户反馈操作比以前方便。",
            ),
            post(
                "calm-renovation",
                WEIBO,
                8,
                Calm,
                "用有钱花周转了一下",
                "装修差两万，用有钱花借了十二期，审批挺快，费用页面写得清楚，按时还款一切正常。",
            ),
            // The crisis.
            post(
                "burst-contacts",
                COMPLAINTS,
                10,
                Burst,
                "度小满有钱花暴力催收，爆我通讯录",
                "逾期才三天，有钱花的催收就给我通讯录里的同事、朋友挨个打电话骚扰，说我欠钱不还，\
                 严重影响我的工作和生活。强烈要求度小满停止暴力催收！",
            ),
            post(
                "burst-parents",
                WEIBO,
                12,
                Burst,
                "度小满的催收太过分了",
                "度小满的催收太过分了，天天打电话骚扰我爸妈，老人被吓得整夜睡不着觉。#暴力催收#",
            ),
            post(
                "burst-fees",
                COMPLAINTS,
                14,
                Burst,
                "有钱花收取砍头息",
                "借款五万，到账只有四万六，所谓服务费先扣走了，实际利率远超宣传。\
                 投诉度小满收取砍头息、隐瞒费用，要求退还。",
            ),
            post(
                "burst-threats",
                WEIBO,
                16,
                Burst,
                "有钱花的催收威胁说要上门",
                "有钱花的催收威胁说要上门、要起诉我，还要通知我单位领导，吓得我一晚上没合眼。\
                 度小满就是这样对待用户的吗？",
            ),
            post(
                "burst-news",
                NEWS,
                18,
                Burst,
                "多名用户投诉度小满旗下有钱花暴力催收",
                "记者梳理发现，近一周投诉平台上涉及有钱花的投诉激增，用户反映催收人员爆通讯录、\
                 骚扰家人，并以上门相威胁。",
            ),
            post(
                "burst-insults",
                COMPLAINTS,
                20,
                Burst,
                "度小满催收员辱骂我，还打给我前同事",
                "电话里脏话不断，说我是老赖，又把我的欠款情况告诉前同事，让我在朋友圈抬不起头。",
            ),
            post(
                "burst-english",
                WEIBO,
                22,
                Burst,
                "度小满 debt collectors keep calling my parents",
                "度小满 debt collectors keep calling my parents and threatening them over a loan \
                 I am already repaying. This is harassment.",
            ),
            post(
                "burst-calls",
                COMPLAINTS,
                24,
                Burst,
                "有钱花一天打几十个骚扰电话",
                "每天从早到晚二三十个陌生号码轮番打来，还给我老婆发短信说要上门拜访。\
                 度小满的暴力催收到底有没有人管？",
            ),
            post(
                "burst-lawyer",
                WEIBO,
                26,
                Burst,
                "度小满金融的催收冒充律师",
                "度小满金融的催收冒充律师给我发律师函，说不还钱就要坐牢，这不是恐吓吗？",
            ),
            post(
                "burst-investigation",
                NEWS,
                28,
                Burst,
                "有钱花催收乱象调查：爆通讯录、伪造律师函",
                "多位借款人称，有钱花逾期后遭遇爆通讯录、伪造律师函和冒充公检法的威胁，\
                 度小满回应称正在核查。",
            ),
            post(
                "burst-leak",
                COMPLAINTS,
                30,
                Burst,
                "度小满泄露我的个人信息",
                "度小满泄露我的个人信息，第三方催收公司拿着我的资料天天骚扰我妹妹，太可怕了。",
            ),
            post(
                "burst-family",
                WEIBO,
                32,
                Burst,
                "Borrowed from 有钱花 once",
                "Borrowed from 有钱花 once. Now their collectors threaten my whole family every \
                 day. Terrible.",
            ),
            post(
                "burst-usury",
                COMPLAINTS,
                38,
                Burst,
                "有钱花变相高利贷",
                "逾期后罚息、违约金、催收费层层叠加，一万块的借款半年滚到一万五，\
                 要求度小满给个说法。",
            ),
        ];
        for (guid, original, secs) in [
            ("repost-contacts", "burst-contacts", 15),
            ("repost-threats", "burst-threats", 25),
            ("repost-lawyer", "burst-lawyer", 34),
        ] {
            let original = posts
                .iter()
                .find(|p| p.guid == original)
                .expect("the reposted post is in the script");
            let repost = original.reposted(guid, WEIBO, Duration::from_secs(secs));
            posts.push(repost);
        }
        posts.sort_by_key(|p| p.offset);
        Script { sources, posts }
    }

    /// The same story told `factor` times faster (offsets divided by `factor`).
    ///
    /// # Panics
    ///
    /// When `factor` is not a positive, finite number.
    pub fn scaled(mut self, factor: f64) -> Script {
        assert!(
            factor.is_finite() && factor > 0.0,
            "a speed-up factor must be positive, not {factor}"
        );
        for p in &mut self.posts {
            p.offset = p.offset.div_f64(factor);
        }
        self
    }

    /// The offset of the last post: from then on every feed is complete.
    pub fn duration(&self) -> Duration {
        self.posts
            .iter()
            .map(|p| p.offset)
            .max()
            .unwrap_or_default()
    }

    /// The offset of the first burst post, if there is one.
    pub fn burst_start(&self) -> Option<Duration> {
        self.posts
            .iter()
            .filter(|p| p.phase == Phase::Burst)
            .map(|p| p.offset)
            .min()
    }

    /// The source named `name`, or whose slug is `name`.
    pub fn source(&self, name: &str) -> Option<&ScriptSource> {
        self.sources
            .iter()
            .find(|s| s.name == name || s.slug == name)
    }

    pub fn post(&self, guid: &str) -> Option<&ScriptPost> {
        self.posts.iter().find(|p| p.guid == guid)
    }

    /// The posts of `source` that have appeared at `elapsed`, newest first (as feeds list them).
    pub fn visible<'a>(
        &'a self,
        source: &'a str,
        elapsed: Duration,
    ) -> impl Iterator<Item = &'a ScriptPost> + 'a {
        self.posts
            .iter()
            .rev()
            .filter(move |p| p.source == source && p.offset <= elapsed)
    }
}

/// Builds one post of the default script.
fn post(guid: &str, source: &str, secs: u64, phase: Phase, title: &str, body: &str) -> ScriptPost {
    ScriptPost {
        guid: guid.into(),
        source: source.into(),
        offset: Duration::from_secs(secs),
        title: title.into(),
        body: body.into(),
        repost_of: None,
        phase,
    }
}

impl ScriptPost {
    /// Title and body as one text, the way the pipeline reads a post.
    pub fn text(&self) -> String {
        if self.body.starts_with(&self.title) {
            self.body.clone()
        } else {
            format!("{}。{}", self.title, self.body)
        }
    }

    /// A repost of this post: its whole text behind [`REPOST_PREFIX`], under a new GUID.
    pub fn reposted(&self, guid: &str, source: &str, offset: Duration) -> ScriptPost {
        ScriptPost {
            guid: guid.into(),
            source: source.into(),
            offset,
            title: format!("{REPOST_PREFIX}{}", self.title),
            body: format!("{REPOST_PREFIX}{}", self.text()),
            repost_of: Some(self.guid.clone()),
            phase: self.phase,
        }
    }
}

/// How far one feed has been served, for tests and curious callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// GET requests answered.
    pub requests: u64,
    /// The latest script time a response was built at.
    pub latest: Option<Duration>,
}

type Clock = Box<dyn Fn() -> Duration + Send + Sync>;

struct Inner {
    script: Script,
    start: DateTime<Utc>,
    clock: Clock,
    base_url: String,
    /// Per source slug.
    served: HashMap<String, watch::Sender<Served>>,
}

impl Inner {
    fn post_url(&self, guid: &str) -> String {
        format!("{}/post/{guid}", self.base_url)
    }
}

/// The loopback feed server that plays a [`Script`]. Stopped by [`DemoServer::stop`], or
/// abruptly when dropped.
pub struct DemoServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    inner: Arc<Inner>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl DemoServer {
    /// Binds 127.0.0.1:0 and plays `script`, with publication dates counted from now. `clock`
    /// says how far into the script the server is (real elapsed time for the demo).
    pub async fn start(
        script: Script,
        clock: impl Fn() -> Duration + Send + Sync + 'static,
    ) -> anyhow::Result<DemoServer> {
        DemoServer::start_at(script, Utc::now(), clock).await
    }

    /// As [`DemoServer::start`], with the script starting at `start`: a post's `pubDate` is
    /// `start` + its offset.
    pub async fn start_at(
        script: Script,
        start: DateTime<Utc>,
        clock: impl Fn() -> Duration + Send + Sync + 'static,
    ) -> anyhow::Result<DemoServer> {
        use anyhow::Context;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the demo feed server to 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let served = script
            .sources
            .iter()
            .map(|s| (s.slug.clone(), watch::channel(Served::default()).0))
            .collect();
        let inner = Arc::new(Inner {
            script,
            start,
            clock: Box::new(clock),
            base_url: base_url.clone(),
            served,
        });
        let app = Router::new()
            .route("/", get(index))
            .route("/feed/{slug}", get(feed))
            .route("/post/{guid}", get(post_page))
            .with_state(inner.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::warn!(error = %e, "the demo feed server stopped");
            }
        });
        Ok(DemoServer {
            base_url,
            inner,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn script(&self) -> &Script {
        &self.inner.script
    }

    /// The feed URL of the source with this name (or slug).
    ///
    /// # Panics
    ///
    /// When the script has no such source.
    pub fn feed_url(&self, source: &str) -> String {
        let source = self
            .inner
            .script
            .source(source)
            .unwrap_or_else(|| panic!("the demo script has no source {source:?}"));
        format!("{}/feed/{}", self.base_url, source.slug)
    }

    /// The link of a post: a small HTML page on this server.
    pub fn post_url(&self, guid: &str) -> String {
        self.inner.post_url(guid)
    }

    /// How far the feed of `source` (name or slug) has been served; default when unknown.
    pub fn served(&self, source: &str) -> Served {
        self.served_channel(source)
            .map(|tx| *tx.borrow())
            .unwrap_or_default()
    }

    /// Resolves once the feed of `source` (name or slug) has been answered with the clock at
    /// `elapsed` or later, i.e. with every post up to `elapsed` in it.
    ///
    /// # Panics
    ///
    /// When the script has no such source.
    pub async fn wait_served(&self, source: &str, elapsed: Duration) {
        let mut rx = self
            .served_channel(source)
            .unwrap_or_else(|| panic!("the demo script has no source {source:?}"))
            .subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx
            .wait_for(|s| s.latest.is_some_and(|t| t >= elapsed))
            .await;
    }

    fn served_channel(&self, source: &str) -> Option<&watch::Sender<Served>> {
        let slug = &self.inner.script.source(source)?.slug;
        self.inner.served.get(slug)
    }

    /// Stops accepting, lets open requests finish (for a few seconds at most), and returns
    /// once the server is gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn feed(State(inner): State<Arc<Inner>>, UrlPath(slug): UrlPath<String>) -> Response {
    let Some(source) = inner.script.sources.iter().find(|s| s.slug == slug) else {
        return not_found();
    };
    let elapsed = (inner.clock)();
    let body = rss(&inner, source, elapsed);
    if let Some(tx) = inner.served.get(&slug) {
        tx.send_modify(|s| {
            s.requests += 1;
            s.latest = Some(s.latest.map_or(elapsed, |t| t.max(elapsed)));
        });
    }
    (
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The RSS 2.0 document of `source` at `elapsed`.
fn rss(inner: &Inner, source: &ScriptSource, elapsed: Duration) -> String {
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\">\n<channel>\n");
    let _ = writeln!(s, "<title>{}</title>", escape(&source.name));
    let _ = writeln!(s, "<link>{}/</link>", escape(&inner.base_url));
    let _ = writeln!(
        s,
        "<description>{}</description>",
        escape(&source.description)
    );
    for p in inner.script.visible(&source.name, elapsed) {
        s.push_str("<item>\n");
        let _ = writeln!(
            s,
            "  <guid isPermaLink=\"false\">{}</guid>",
            escape(&p.guid)
        );
        let _ = writeln!(s, "  <title>{}</title>", escape(&p.title));
        let _ = writeln!(s, "  <link>{}</link>", escape(&inner.post_url(&p.guid)));
        let _ = writeln!(s, "  <description>{}</description>", escape(&p.body));
        let _ = writeln!(
            s,
            "  <pubDate>{}</pubDate>",
            published(inner.start, p.offset).to_rfc2822()
        );
        s.push_str("</item>\n");
    }
    s.push_str("</channel>\n</rss>\n");
    s
}

fn published(start: DateTime<Utc>, offset: Duration) -> DateTime<Utc> {
    start + chrono::Duration::from_std(offset).unwrap_or(chrono::Duration::MAX)
}

/// A post's page, once the post has appeared.
async fn post_page(State(inner): State<Arc<Inner>>, UrlPath(guid): UrlPath<String>) -> Response {
    let elapsed = (inner.clock)();
    let Some(p) = inner.script.post(&guid).filter(|p| p.offset <= elapsed) else {
        return not_found();
    };
    let source = inner.script.source(&p.source);
    let mut html = page_head(&p.title);
    let _ = writeln!(
        html,
        "<h1>{}</h1>\n<p><small>{} · {}</small></p>\n<p>{}</p>",
        escape(&p.title),
        escape(&p.source),
        published(inner.start, p.offset).format("%Y-%m-%d %H:%M:%S UTC"),
        escape(&p.body),
    );
    if let Some(original) = p.repost_of.as_deref().and_then(|g| inner.script.post(g)) {
        let _ = writeln!(
            html,
            "<p>原帖：<a href=\"{}\">{}</a></p>",
            escape(&inner.post_url(&original.guid)),
            escape(&original.title)
        );
    }
    if let Some(source) = source {
        let _ = writeln!(
            html,
            "<p><a href=\"/feed/{}\">{} RSS</a> · <a href=\"/\">yuqing demo</a></p>",
            escape(&source.slug),
            escape(&source.name)
        );
    }
    html.push_str("<p><em>演示数据：这是 yuqing demo 虚构的帖子。</em></p>\n</body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// Lists the feeds.
async fn index(State(inner): State<Arc<Inner>>) -> Response {
    let mut html = page_head("yuqing demo");
    html.push_str("<h1>yuqing demo</h1>\n<p>Scripted feeds (fictional posts):</p>\n<ul>\n");
    for s in &inner.script.sources {
        let _ = writeln!(
            html,
            "<li><a href=\"/feed/{}\">{}</a> — {}</li>",
            escape(&s.slug),
            escape(&s.name),
            escape(&s.description)
        );
    }
    html.push_str("</ul>\n</body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn page_head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{}</title>\
         </head><body>\n",
        escape(title)
    )
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found",
    )
        .into_response()
}

/// Escapes text for XML and HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The `sources.toml` text for the demo: the brand 度小满 (aliases 有钱花 and 度小满金融, the
/// solar term 欢度小满 excluded), one feed source per script source on `server`, polled every
/// second, and detection tuned so that the burst opens an incident within seconds: four
/// negative hits in five minutes, twice the baseline of the past hour. No Telegram chat, so
/// alerts go to the console. Data goes to `data_dir`; the admin server listens on
/// `admin_listen`.
pub fn demo_config(server: &DemoServer, data_dir: &Path, admin_listen: &str) -> String {
    let mut s = String::new();
    s.push_str("# yuqing demo: a scripted crisis on loopback feeds.\n\n[daemon]\n");
    let _ = writeln!(s, "data_dir = {}", toml_string(&data_dir.to_string_lossy()));
    s.push_str(concat!(
        "user_agent = \"yuqing-demo/",
        env!("CARGO_PKG_VERSION"),
        "\"\n"
    ));
    s.push_str("fetch_timeout = \"5s\"\n\n");
    let _ = writeln!(s, "[admin]\nlisten = {}\n", toml_string(admin_listen));
    s.push_str(
        "[detection]\n\
         window = \"5m\"\n\
         baseline_window = \"1h\"\n\
         min_negative = 4\n\
         spike_ratio = 2.0\n\
         top_posts = 3\n\n",
    );
    s.push_str(
        "[[brands]]\n\
         name = \"度小满\"\n\
         aliases = [\"有钱花\", \"度小满金融\"]\n\
         exclusions = [\"欢度小满\"]\n",
    );
    for source in &server.script().sources {
        let _ = write!(
            s,
            "\n[[sources]]\nname = {}\nkind = \"feed\"\nurl = {}\ninterval = \"1s\"\nweight = {:?}\n",
            toml_string(&source.name),
            toml_string(&server.feed_url(&source.name)),
            source.weight,
        );
    }
    s
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_story_is_calm_first_then_a_burst_with_reposts() {
        let script = Script::default_crisis();
        assert!((3..=4).contains(&script.sources.len()));
        let burst = script.burst_start().unwrap();
        assert_eq!(burst, Duration::from_secs(10));
        for p in &script.posts {
            assert_eq!(
                p.phase == Phase::Burst,
                p.offset >= burst,
                "{} is out of its phase",
                p.guid
            );
            assert!(script.source(&p.source).is_some(), "{}", p.guid);
        }
        let complaints = script
            .posts
            .iter()
            .filter(|p| p.phase == Phase::Burst && p.repost_of.is_none())
            .count();
        assert!((10..=15).contains(&complaints), "{complaints}");
        let reposts: Vec<&ScriptPost> = script
            .posts
            .iter()
            .filter(|p| p.repost_of.is_some())
            .collect();
        assert!((2..=3).contains(&reposts.len()));
        for r in reposts {
            let original = script.post(r.repost_of.as_deref().unwrap()).unwrap();
            assert!(r.title.starts_with(REPOST_PREFIX), "{}", r.title);
            assert!(r.body.contains(&original.body), "{}", r.guid);
            assert!(r.offset > original.offset, "{}", r.guid);
        }
        let mut guids: Vec<&str> = script.posts.iter().map(|p| p.guid.as_str()).collect();
        let n = guids.len();
        guids.sort_unstable();
        guids.dedup();
        assert_eq!(guids.len(), n, "GUIDs are unique");
        assert!(script.duration() <= Duration::from_secs(40));
        assert!(script.posts.windows(2).all(|w| w[0].offset <= w[1].offset));
        // The demo promises an incident within a minute: four negatives by 20 s, polled every
        // second.
        let fourth = script
            .posts
            .iter()
            .filter(|p| p.phase == Phase::Burst)
            .nth(3)
            .unwrap();
        assert!(fourth.offset <= Duration::from_secs(20));
    }

    #[test]
    fn scaling_divides_offsets() {
        let script = Script::default_crisis().scaled(10.0);
        assert_eq!(script.burst_start(), Some(Duration::from_secs(1)));
        assert_eq!(script.duration(), Duration::from_millis(3800));
    }

    #[test]
    fn feeds_hold_back_posts_until_their_offset() {
        let script = Script::default_crisis();
        let at_zero: Vec<&str> = script
            .visible("财经新闻", Duration::ZERO)
            .map(|p| p.guid.as_str())
            .collect();
        assert_eq!(at_zero, ["calm-results"]);
        let all = script.visible("微博", Duration::from_secs(3600)).count();
        assert_eq!(
            all,
            script.posts.iter().filter(|p| p.source == "微博").count()
        );
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }
}
