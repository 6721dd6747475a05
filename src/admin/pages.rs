//! The console's pages: one function per page, each returning a whole HTML document.
//!
//! The handlers fill the view models below and call these; nothing here does I/O. Pages are
//! server-rendered and work with JavaScript off. The only script is a few lines on pages that
//! show live state (overview, incident, sources): it reloads the page every 30 seconds unless
//! a form field has focus or has been typed into, so a half-written note is never thrown away.
//!
//! # Safety of what is shown
//!
//! - Every value goes through maud, which escapes it. `PreEscaped` wraps only the constant
//!   stylesheet and script of this file (a test reads this file to keep it so).
//! - A post's URL becomes a link only when it is `http` or `https`
//!   ([`safe_href`]); any other (`javascript:`, `data:`) is shown as text. Links out carry
//!   `rel="noopener noreferrer"`.
//! - Titles are cut to [`MAX_TITLE_CHARS`] characters, so a hostile feed cannot flood a page.
//! - Every `POST` form carries the session's CSRF token as a hidden field named `csrf`. The
//!   log-in form cannot (there is no session yet; see [`login`]).
//!
//! # Times
//!
//! Times are stored in UTC and shown in [`Page::tz`], the configured zone, as
//! `YYYY-MM-DD HH:MM` inside `<time datetime="…">` (RFC 3339, UTC) so a tooltip or script can
//! still read the exact instant. [`BrandOverview::hours`] are already local (they are the
//! store's local hour bins) and are shown as they are.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::charts;
use super::i18n::{Label, Lang};
use crate::store::{DailyFigures, HitPage, Incident, IncidentState, SourceHealth};

/// Titles longer than this (in characters) are cut and end in `…`.
pub const MAX_TITLE_CHARS: usize = 120;
/// Error messages and snippets are cut at this length.
const MAX_TEXT_CHARS: usize = 300;

/// Size of the overview's charts (they scale down with the card).
const CHART_WIDTH: u32 = 480;
const CHART_HEIGHT: u32 = 140;

/// A logged-in person.
#[derive(Clone)]
pub struct Session {
    /// The name they gave at log-in: it goes into incident timelines.
    pub name: String,
    /// The token every form of theirs carries as the hidden field `csrf`.
    pub csrf: String,
}

/// The token stays out of logs.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.name)
            .field("csrf", &"…")
            .finish()
    }
}

/// What every page needs besides its own data.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    pub lang: Lang,
    /// `None`: anonymous, shown the log-in link instead of forms.
    pub session: Option<&'a Session>,
    /// The result of the last action, e.g. "already acknowledged by alice". Shown once, on top.
    pub flash: Option<String>,
    /// The zone times are shown in (the store's, so days and hours agree with the figures).
    pub tz: Tz,
}

/// One brand on the overview.
#[derive(Debug, Clone)]
pub struct BrandOverview {
    pub brand: String,
    pub today: DailyFigures,
    /// The last 7 local days, oldest first (today included).
    pub week: Vec<(NaiveDate, DailyFigures)>,
    /// The last 24 hours as hourly bins, oldest first: (hour start in local time, mentions,
    /// negative).
    pub hours: Vec<(DateTime<FixedOffset>, u64, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub brands: Vec<BrandOverview>,
    pub open_incidents: Vec<Incident>,
    /// Sources whose last poll failed, with their health.
    pub failing_sources: Vec<(String, SourceHealth)>,
    /// The zone's name as shown on the page, e.g. `Asia/Shanghai`.
    pub time_zone: String,
}

/// The hit list's filters, as the person typed them (so the form shows them again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HitFilters {
    pub brand: Option<String>,
    pub negative: Option<bool>,
    pub source: Option<String>,
    /// E.g. `24h`, as typed.
    pub since: Option<String>,
}

/// The overview: one card per brand (today's figures, the 7-day complaint-rate and harm
/// trends, the 24-hour volume), then open incidents and failing sources. Auto-refreshes.
pub fn overview(page: &Page, o: &Overview) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let content = html! {
        h1 { (t(Label::Overview)) }
        p.muted { (t(Label::TimeZone)) ": " (o.time_zone) }
        @if o.brands.is_empty() {
            p.empty id="no-brands" { (t(Label::NoBrands)) }
        } @else {
            div.cards {
                @for brand in &o.brands {
                    (brand_card(lang, brand))
                }
            }
        }
        h2 { (t(Label::OpenIncidents)) }
        @if o.open_incidents.is_empty() {
            p.empty id="no-incidents" { (t(Label::NoOpenIncidents)) }
        } @else {
            table id="incidents" {
                thead {
                    tr {
                        th { (t(Label::Incident)) }
                        th { (t(Label::Brand)) }
                        th { (t(Label::State)) }
                        th { (t(Label::Owner)) }
                        th.num { (t(Label::HitCount)) }
                        th { (t(Label::OpenedAt)) }
                    }
                }
                tbody {
                    @for i in &o.open_incidents {
                        tr {
                            td { a href=(incident_path(i.id)) { "#" (i.id) } }
                            td { (i.brand) }
                            td { (state_badge(lang, i.state)) }
                            td { (owner_name(lang, i)) }
                            td.num { (i.hit_count) }
                            td { (time(i.opened_at, page.tz)) }
                        }
                    }
                }
            }
        }
        h2 { (t(Label::FailingSources)) }
        @if o.failing_sources.is_empty() {
            p.empty id="sources-ok" { (t(Label::AllSourcesHealthy)) }
        } @else {
            ul id="failing-sources" {
                @for (name, health) in &o.failing_sources {
                    li {
                        a href="/sources" { (name) }
                        " — " (t(Label::ConsecutiveFailures)) ": " (health.consecutive_failures)
                        @if let Some(error) = &health.last_error {
                            " — " span.error-text { (truncate(error, MAX_TEXT_CHARS)) }
                        }
                        @if let Some(at) = health.last_error_at {
                            " (" (time(at, page.tz)) ")"
                        }
                    }
                }
            }
        }
    };
    layout(page, t(Label::Overview), Some("/"), true, content)
}

fn brand_card(lang: Lang, b: &BrandOverview) -> Markup {
    let t = |label: Label| label.t(lang);
    let rates: Vec<(String, Option<f64>)> = b
        .week
        .iter()
        .map(|(day, f)| (day.format("%m-%d").to_string(), f.complaint_rate()))
        .collect();
    let harm: Vec<(String, Option<f64>)> = b
        .week
        .iter()
        .map(|(day, f)| (day.format("%m-%d").to_string(), Some(f.harm)))
        .collect();
    let volume: Vec<(String, f64, f64)> = b
        .hours
        .iter()
        .map(|(hour, mentions, negative)| {
            (
                hour.format("%H:00").to_string(),
                *mentions as f64,
                *negative as f64,
            )
        })
        .collect();
    let chart_title = |label: Label| format!("{} — {}", b.brand, t(label));
    let (mentions_colour, negative_colour) = charts::BAR_COLOURS;
    html! {
        section.card {
            h2 { (b.brand) }
            dl.figures {
                div { dt { (t(Label::MentionsToday)) } dd { (b.today.mentions) } }
                div { dt { (t(Label::NegativeHits)) } dd { (b.today.negative) } }
                div { dt { (t(Label::ComplaintRate)) } dd { (rate_text(b.today.complaint_rate())) } }
                div { dt { (t(Label::HarmIndex)) } dd { (harm_text(b.today.harm)) } }
            }
            h3 { (t(Label::ComplaintRateTrend)) }
            (charts::line_chart(&chart_title(Label::ComplaintRateTrend), &rates, axis_percent, CHART_WIDTH, CHART_HEIGHT))
            h3 { (t(Label::HarmTrend)) }
            (charts::line_chart(&chart_title(Label::HarmTrend), &harm, axis_two_decimals, CHART_WIDTH, CHART_HEIGHT))
            h3 { (t(Label::Volume24h)) }
            (charts::bar_chart(&chart_title(Label::Volume24h), &volume, CHART_WIDTH, CHART_HEIGHT))
            p.legend {
                span.swatch style=(format!("background:{mentions_colour}")) {}
                (t(Label::Mentions)) " "
                span.swatch style=(format!("background:{negative_colour}")) {}
                (t(Label::NegativeHits))
            }
        }
    }
}

/// One incident: its state and figures, the actions a logged-in person may take now, the top
/// posts and the timeline. Auto-refreshes (unless a note is being typed).
///
/// Forms, all `method="post"` with the hidden `csrf` field: `/incidents/{id}/ack` (button
/// `#ack`, while Triggered), `/incidents/{id}/resolve` (textarea `note`/`#note`, button
/// `#resolve`, while Triggered or Acknowledged), `/incidents/{id}/reopen` (button `#reopen`,
/// once Resolved), `/incidents/{id}/fp` (button `#fp`: its hits are false positives). Anonymous visitors get a link to `/login?next=/incidents/{id}` instead.
pub fn incident(page: &Page, i: &Incident) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let title = format!("{} #{} — {}", t(Label::Incident), i.id, i.brand);
    let window = crate::config::human_duration(Duration::from_secs(i.window_secs));
    let content = html! {
        h1 { (t(Label::Incident)) " #" (i.id) " — " (i.brand) " " (state_badge(lang, i.state)) }
        dl.facts {
            dt { (t(Label::State)) } dd { (t(state_label(i.state))) }
            dt { (t(Label::Owner)) }
            dd id="owner" {
                (owner_name(lang, i))
                @if let Some(at) = i.acked_at { " · " (time(at, page.tz)) }
            }
            @if let Some(by) = &i.resolved_by {
                dt { (t(Label::ResolvedBy)) }
                dd {
                    (by.name)
                    @if let Some(at) = i.resolved_at { " · " (time(at, page.tz)) }
                }
            }
            dt { (t(Label::OpenedAt)) } dd { (time(i.opened_at, page.tz)) }
            dt { (t(Label::Window)) } dd { (window) }
            dt { (t(Label::WindowCount)) } dd { (i.window_count) }
            dt { (t(Label::Baseline)) } dd { (one_decimal(i.baseline)) }
            dt { (t(Label::HitCount)) } dd { (i.hit_count) }
            @if !i.opened_because.is_empty() {
                dt { (t(Label::WhyOpened)) } dd #why { (i.opened_because) }
            }
            @if !i.topic_terms.is_empty() {
                dt { (t(Label::Topic)) } dd #topic { (i.topic_terms.join("、")) }
            }
            @if !i.categories.is_empty() {
                dt { (t(Label::Categories)) }
                dd #categories {
                    @for (category, n) in &i.categories { span.category { (category) " " (n) } " " }
                }
            }
        }
        p { a href=(format!("{}/report", incident_path(i.id))) id="report" { (t(Label::Report)) } }
        h2 { (t(Label::Actions)) }
        (incident_actions(page, i))
        h2 { (t(Label::TopPosts)) }
        @if i.top_posts.is_empty() {
            p.empty { (t(Label::NoTopPosts)) }
        } @else {
            table id="top-posts" {
                thead {
                    tr {
                        th { (t(Label::Title)) }
                        th { (t(Label::Source)) }
                        th.num { (t(Label::Score)) }
                        th { (t(Label::Terms)) }
                        th { (t(Label::Time)) }
                    }
                }
                tbody {
                    @for p in &i.top_posts {
                        tr {
                            td { (post_title(lang, &p.title, p.url.as_deref())) }
                            td { (p.source) }
                            td.num { (one_decimal(p.score)) }
                            td.terms { (p.terms.join(", ")) }
                            td { (time(p.at, page.tz)) }
                        }
                    }
                }
            }
        }
        h2 { (t(Label::Timeline)) }
        @if i.history.is_empty() {
            p.empty { (t(Label::NoHistory)) }
        } @else {
            ol.timeline id="timeline" {
                @for step in &i.history {
                    li {
                        (time(step.at, page.tz)) " · "
                        strong { @match &step.by { Some(actor) => (actor.name), None => (t(Label::System)) } }
                        " · " (t(state_label(step.to)))
                        @if !step.note.is_empty() { " — " (step.note) }
                        @if let Some(via) = &step.via { " (" span.via { (via) } ")" }
                    }
                }
            }
        }
    };
    layout(page, &title, None, true, content)
}

/// The incident report: its Markdown as text (escaped like everything else; the console does
/// not render Markdown, so nothing in a post can become markup), and a link to the raw file.
pub fn report(page: &Page, i: &Incident, markdown: &str) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let title = format!("{} #{} — {}", t(Label::Report), i.id, i.brand);
    let content = html! {
        h1 { (title) }
        p {
            a href=(incident_path(i.id)) id="back-to-incident" { (t(Label::BackToIncident)) }
            " · "
            a href=(format!("/api/v1/incidents/{}/report", i.id)) id="report-markdown" {
                (t(Label::ReportMarkdown))
            }
        }
        pre.report id="report-text" { (markdown) }
    };
    layout(page, &title, None, false, content)
}

/// The forms the state allows, or the way to log in to use them.
fn incident_actions(page: &Page, i: &Incident) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let Some(session) = page.session else {
        return html! {
            p {
                a href=(format!("/login?next={}", incident_path(i.id))) id="login-to-act" {
                    (t(Label::LogInToAct))
                }
            }
        };
    };
    let action = |verb: &str| format!("{}/{verb}", incident_path(i.id));
    html! {
        @if i.state == IncidentState::Triggered {
            form.action method="post" action=(action("ack")) {
                (csrf_field(session))
                button type="submit" id="ack" { (t(Label::Acknowledge)) }
            }
        }
        @if i.state.is_open() {
            form.action method="post" action=(action("resolve")) {
                (csrf_field(session))
                label for="note" { (t(Label::ResolveNote)) }
                textarea name="note" id="note" rows="3" maxlength="2000" {}
                div { button type="submit" id="resolve" { (t(Label::Resolve)) } }
            }
        }
        @if i.state == IncidentState::Resolved {
            form.action method="post" action=(action("reopen")) {
                (csrf_field(session))
                button type="submit" id="reopen" { (t(Label::Reopen)) }
            }
        }
        form.action method="post" action=(action("fp")) {
            (csrf_field(session))
            button type="submit" id="fp" { (t(Label::FalsePositive)) }
        }
    }
}

/// The hit list: a `GET /hits` filter form (`brand`, `negative` = "" | "true" | "false",
/// `source`, `since`; button `#filter`) and one row per hit, newest first, with a `#next` link
/// (`rel="next"`) when `next_link` is given. `brands` and `sources` fill the selects; a chosen
/// value that is in neither still shows as chosen.
pub fn hits(
    page: &Page,
    filters: &HitFilters,
    brands: &[String],
    sources: &[String],
    page_data: &HitPage,
    next_link: Option<String>,
) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let chosen_brand = filters.brand.as_deref().filter(|b| !b.is_empty());
    let chosen_source = filters.source.as_deref().filter(|s| !s.is_empty());
    let content = html! {
        h1 { (t(Label::Hits)) }
        form.filters method="get" action="/hits" {
            div {
                label for="brand" { (t(Label::Brand)) }
                (select("brand", t(Label::Any), &options(brands, chosen_brand), chosen_brand))
            }
            div {
                label for="negative" { (t(Label::Negative)) }
                select name="negative" id="negative" {
                    option value="" selected[filters.negative.is_none()] { (t(Label::Any)) }
                    option value="true" selected[filters.negative == Some(true)] { (t(Label::Yes)) }
                    option value="false" selected[filters.negative == Some(false)] { (t(Label::No)) }
                }
            }
            div {
                label for="source" { (t(Label::Source)) }
                (select("source", t(Label::Any), &options(sources, chosen_source), chosen_source))
            }
            div {
                label for="since" { (t(Label::Since)) }
                input type="text" name="since" id="since" size="8" maxlength="32"
                    value=[filters.since.as_deref()] placeholder=(t(Label::SinceHint));
            }
            div { button type="submit" id="filter" { (t(Label::Filter)) } }
        }
        @if page_data.hits.is_empty() {
            p.empty id="no-hits" { (t(Label::NoHits)) }
        } @else {
            table id="hits" {
                thead {
                    tr {
                        th { (t(Label::Time)) }
                        th { (t(Label::Brand)) }
                        th { (t(Label::Source)) }
                        th { (t(Label::Title)) }
                        th.num { (t(Label::Score)) }
                        th { (t(Label::Negative)) }
                        th { (t(Label::Terms)) }
                    }
                }
                tbody {
                    @for stored in &page_data.hits {
                        @let hit = &stored.hit;
                        tr.negative[hit.negative] id=(format!("hit-{}", stored.id)) {
                            td { (time(hit.at, page.tz)) }
                            td { (hit.brand) }
                            td { (hit.source) }
                            td {
                                (post_title(lang, &hit.title, hit.url.as_deref()))
                                @if !hit.snippet.is_empty() {
                                    div.snippet { (truncate(&hit.snippet, MAX_TEXT_CHARS)) }
                                }
                            }
                            td.num { (one_decimal(hit.score)) }
                            td { (t(if hit.negative { Label::Yes } else { Label::No })) }
                            td.terms { (hit.terms.join(", ")) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &next_link {
            p { a href=(next) rel="next" id="next" { (t(Label::NextPage)) " →" } }
        }
    };
    layout(page, t(Label::Hits), Some("/hits"), false, content)
}

/// `known`, plus `chosen` when it is not among them.
fn options<'a>(known: &'a [String], chosen: Option<&'a str>) -> Vec<&'a str> {
    let mut all: Vec<&str> = known.iter().map(String::as_str).collect();
    if let Some(c) = chosen {
        if !all.contains(&c) {
            all.push(c);
        }
    }
    all
}

/// A select named and identified `name`, whose first option ("any") is the empty value.
fn select(name: &str, any: &str, values: &[&str], chosen: Option<&str>) -> Markup {
    html! {
        select name=(name) id=(name) {
            option value="" selected[chosen.is_none()] { (any) }
            @for v in values {
                option value=(v) selected[chosen == Some(*v)] { (v) }
            }
        }
    }
}

/// Every source's recent polling; failing ones (a failure since the last success) are
/// highlighted (`tr.failing`). Auto-refreshes.
pub fn sources(page: &Page, list: &[(String, SourceHealth)]) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let when = |at: Option<DateTime<Utc>>| match at {
        Some(at) => time(at, page.tz),
        None => html! { span.muted { (t(Label::Never)) } },
    };
    let content = html! {
        h1 { (t(Label::Sources)) }
        @if list.is_empty() {
            p.empty id="no-sources" { (t(Label::NoSources)) }
        } @else {
            table id="sources" {
                thead {
                    tr {
                        th { (t(Label::Source)) }
                        th { (t(Label::LastPoll)) }
                        th { (t(Label::LastSuccess)) }
                        th.num { (t(Label::ConsecutiveFailures)) }
                        th.num { (t(Label::NewItems)) }
                        th.num { (t(Label::ItemsSeen)) }
                        th { (t(Label::LastNewItem)) }
                        th { (t(Label::ErrorClass)) }
                        th { (t(Label::LastError)) }
                    }
                }
                tbody {
                    @for (name, h) in list {
                        tr.failing[h.consecutive_failures > 0] {
                            td {
                                (name)
                                @if let Some(why) = &h.unhealthy {
                                    " " span.unhealthy title=(why) { "⚠ " (t(Label::Unhealthy)) }
                                }
                            }
                            td { (when(h.last_poll_at)) }
                            td { (when(h.last_success_at)) }
                            td.num { (h.consecutive_failures) }
                            td.num { (h.last_new_items) }
                            td.num { (h.items_seen) }
                            td { (when(h.last_new_item_at)) }
                            td {
                                @match &h.last_error_class {
                                    Some(class) => (class.label()),
                                    None => span.muted { "—" },
                                }
                            }
                            td {
                                @if let Some(error) = &h.last_error {
                                    (truncate(error, MAX_TEXT_CHARS))
                                    @if let Some(at) = h.last_error_at { " (" (time(at, page.tz)) ")" }
                                } @else {
                                    span.muted { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(page, t(Label::Sources), Some("/sources"), true, content)
}

/// The log-in form: `POST /login` with `name` (`#name`, the person's name for the audit
/// trail), `token` (`#token`, a password field), the hidden `next` (where to go after), and
/// button `#login`. `error` is shown above it.
///
/// It carries no CSRF token: there is no session to tie one to yet. The handler should refuse
/// a cross-site log-in some other way (an `Origin` check, or `SameSite` cookies), and must
/// only redirect to a `next` that is a local path.
pub fn login(page: &Page, next: &str, error: Option<&str>) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let content = html! {
        h1 { (t(Label::LogIn)) }
        @if let Some(error) = error {
            p.error role="alert" id="login-error" { (error) }
        }
        form.login method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label for="name" { (t(Label::Name)) }
            input type="text" name="name" id="name" required autocomplete="username"
                maxlength="100" autofocus;
            p.muted { (t(Label::NameHint)) }
            label for="token" { (t(Label::Token)) }
            input type="password" name="token" id="token" required autocomplete="current-password";
            div { button type="submit" id="login" { (t(Label::LogIn)) } }
        }
    };
    layout(page, t(Label::LogIn), None, false, content)
}

/// A page for something that does not exist; `what` says what was looked for ("incident 42").
pub fn not_found(page: &Page, what: &str) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let content = html! {
        h1 { (t(Label::NotFound)) }
        p id="what" { (what) }
        p { a href="/" { (t(Label::BackToOverview)) } }
    };
    layout(page, t(Label::NotFound), None, false, content)
}

// ---- layout ----

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#5f6670;--line:#d0d7de;--soft:#f6f8fa;--red:#c9302c;--amber:#a86412;--green:#2f7d4f;--blue:#1f5fbf}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:var(--fg);background:#fff}
header{background:var(--soft);border-bottom:1px solid var(--line)}
nav{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;max-width:72rem;margin:0 auto;padding:.5rem 1rem}
nav a{color:var(--fg);text-decoration:none;font-weight:600}
nav a[aria-current]{color:var(--blue);border-bottom:2px solid var(--blue)}
nav .spacer{flex:1}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
h3{font-size:.95rem;margin:1rem 0 .25rem;color:var(--muted)}
a{color:var(--blue)}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--soft)}
.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1rem}
.card{border:1px solid var(--line);border-radius:6px;padding:1rem}
.card h2{margin-top:0}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(7rem,1fr));gap:.5rem;margin:0}
.figures div{background:var(--soft);border-radius:4px;padding:.4rem .6rem}
.figures dt{font-size:.8rem;color:var(--muted)}
.figures dd{margin:0;font-size:1.3rem;font-weight:600;font-variant-numeric:tabular-nums}
.chart{display:block;max-width:100%;height:auto}
.legend{font-size:.8rem;color:var(--muted);margin:.25rem 0}
.swatch{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .6em;vertical-align:middle}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:999px;font-size:.85rem;font-weight:600;color:#fff;vertical-align:middle}
.badge.triggered{background:var(--red)}
.badge.acknowledged{background:var(--amber)}
.badge.resolved{background:var(--green)}
.flash{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .75rem;border-radius:4px}
.error{color:var(--red);font-weight:600}
.error-text{color:var(--red)}
.empty,.muted,.snippet{color:var(--muted)}
.snippet{font-size:.85rem}
.terms{color:var(--red)}
tr.failing td{background:#fdecea}
pre.report{white-space:pre-wrap;background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:1rem;font-size:.9rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}
ol.timeline{list-style:none;padding:0}
ol.timeline li{border-left:3px solid var(--line);padding:.2rem .75rem;margin:.3rem 0}
form.inline{display:inline}
form.action{margin:.5rem 0 1rem}
form.login{max-width:24rem}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
input[type=text],input[type=password],select,textarea{font:inherit;padding:.3rem .4rem;border:1px solid var(--line);border-radius:4px;max-width:100%}
form.login input{width:100%}
textarea{width:100%;max-width:40rem}
button{font:inherit;padding:.35rem .9rem;border:1px solid var(--blue);border-radius:4px;background:var(--blue);color:#fff;cursor:pointer}
nav button{background:none;color:var(--fg);border-color:var(--line);padding:.15rem .6rem}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}
.filters label{margin:0 0 .2rem}
"#;

/// Reloads a page marked `data-autorefresh` every 30 s, unless a field has focus or holds
/// something typed. Without JavaScript the page is simply not refreshed.
const AUTOREFRESH_JS: &str = r#"
(function () {
  "use strict";
  if (!document.body.hasAttribute("data-autorefresh")) return;
  function busy() {
    var a = document.activeElement;
    if (a && /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(a.tagName)) return true;
    var fields = document.querySelectorAll("input, textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].type !== "hidden" && fields[i].value !== fields[i].defaultValue) return true;
    }
    return false;
  }
  setInterval(function () { if (!busy()) location.reload(); }, 30000);
})();
"#;

/// The document around `content`: head, nav (marking `current`), the flash, and the refresh
/// script when `autorefresh`.
fn layout(
    page: &Page,
    title: &str,
    current: Option<&str>,
    autorefresh: bool,
    content: Markup,
) -> Markup {
    let lang = page.lang;
    let t = |label: Label| label.t(lang);
    let here = |path: &str| (current == Some(path)).then_some("page");
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · yuqing" }
                style { (PreEscaped(CSS)) }
            }
            body data-autorefresh[autorefresh] {
                header {
                    nav {
                        a href="/" aria-current=[here("/")] { (t(Label::Overview)) }
                        a href="/hits" aria-current=[here("/hits")] { (t(Label::Hits)) }
                        a href="/sources" aria-current=[here("/sources")] { (t(Label::Sources)) }
                        span.spacer {}
                        @match page.session {
                            Some(session) => {
                                span.who { (t(Label::SignedInAs)) " " strong { (session.name) } }
                                form.inline method="post" action="/logout" {
                                    (csrf_field(session))
                                    button type="submit" id="logout" { (t(Label::LogOut)) }
                                }
                            }
                            None => {
                                a href="/login" id="login-link" { (t(Label::LogIn)) }
                            }
                        }
                    }
                }
                main {
                    @if let Some(flash) = &page.flash {
                        p.flash role="status" id="flash" { (flash) }
                    }
                    (content)
                }
                @if autorefresh {
                    script { (PreEscaped(AUTOREFRESH_JS)) }
                }
            }
        }
    }
}

fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

// ---- pieces ----

fn incident_path(id: u64) -> String {
    format!("/incidents/{id}")
}

fn state_label(state: IncidentState) -> Label {
    match state {
        IncidentState::Triggered => Label::Triggered,
        IncidentState::Acknowledged => Label::Acknowledged,
        IncidentState::Resolved => Label::Resolved,
    }
}

fn state_badge(lang: Lang, state: IncidentState) -> Markup {
    let class = match state {
        IncidentState::Triggered => "badge triggered",
        IncidentState::Acknowledged => "badge acknowledged",
        IncidentState::Resolved => "badge resolved",
    };
    html! { span class=(class) { (state_label(state).t(lang)) } }
}

fn owner_name(lang: Lang, i: &Incident) -> &str {
    match &i.acked_by {
        Some(actor) => &actor.name,
        None => Label::Nobody.t(lang),
    }
}

/// A post's title, linked when its URL is `http(s)`. Another URL is shown as text after it,
/// so the person can still see where the post claimed to be.
fn post_title(lang: Lang, title: &str, url: Option<&str>) -> Markup {
    let shown = if title.trim().is_empty() {
        Cow::Borrowed(Label::Untitled.t(lang))
    } else {
        truncate(title, MAX_TITLE_CHARS)
    };
    match url {
        Some(url) => match safe_href(url) {
            Some(href) => html! {
                a href=(href) rel="noopener noreferrer" target="_blank" { (shown) }
            },
            None => html! {
                (shown) " " span.muted.unlinked { (truncate(url, MAX_TITLE_CHARS)) }
            },
        },
        None => html! { (shown) },
    }
}

/// `url` if it is an absolute `http` or `https` URL with a host, trimmed; `None` for any other
/// scheme (`javascript:`, `data:`), a relative or scheme-relative URL, or one with spaces or
/// control characters in it (browsers drop some of those, which could turn it into another).
pub fn safe_href(url: &str) -> Option<&str> {
    let url = url.trim();
    let strip = |prefix: &str| {
        url.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &url[prefix.len()..])
    };
    let rest = strip("https://").or_else(|| strip("http://"))?;
    let host_starts = !rest.is_empty() && !rest.starts_with(['/', '?', '#']);
    let clean = !url.chars().any(|c| c.is_control() || c.is_whitespace());
    (host_starts && clean).then_some(url)
}

/// `text` cut to `max` characters, the last being `…` when it was cut.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            Cow::Owned(cut)
        }
    }
}

/// An instant in the page's zone, with the exact UTC instant in `datetime`.
fn time(at: DateTime<Utc>, tz: Tz) -> Markup {
    let local = at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    html! { time datetime=(at.to_rfc3339()) { (local) } }
}

/// A complaint rate as a percentage with one decimal; "—" on a day without mentions.
fn rate_text(rate: Option<f64>) -> String {
    match rate {
        Some(r) if r.is_finite() => format!("{:.1}%", r * 100.0),
        _ => "—".to_string(),
    }
}

fn harm_text(harm: f64) -> String {
    if harm.is_finite() {
        format!("{harm:.2}")
    } else {
        "—".to_string()
    }
}

fn one_decimal(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "—".to_string()
    }
}

fn axis_percent(v: f64) -> String {
    rate_text(Some(v))
}

fn axis_two_decimals(v: f64) -> String {
    harm_text(v)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::store::{Actor, Hit, PostSummary, StoredHit, Transition};

    const HOSTILE: &str = "<script>alert(1)</script>\"'&";

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    fn session() -> Session {
        Session {
            name: "alice".into(),
            csrf: "csrf-TOKEN-123".into(),
        }
    }

    fn page(lang: Lang, session: Option<&Session>) -> Page<'_> {
        Page {
            lang,
            session,
            flash: None,
            tz: chrono_tz::Asia::Shanghai,
        }
    }

    fn alice() -> Actor {
        Actor {
            id: 1,
            name: "alice".into(),
        }
    }

    fn post(title: &str, url: Option<&str>) -> PostSummary {
        PostSummary {
            source: "weibo".into(),
            url: url.map(Into::into),
            title: title.into(),
            score: -2.345,
            terms: vec!["暴力催收".into(), "投诉".into()],
            at: at(30, 1),
            excerpt: String::new(),
        }
    }

    fn sample(state: IncidentState) -> Incident {
        let mut history = vec![Transition {
            at: at(30, 0),
            to: IncidentState::Triggered,
            by: None,
            note: "12 negative in window, baseline 1.5".into(),
            via: None,
        }];
        let mut i = Incident {
            window_count: 12,
            baseline: 1.5,
            window_secs: 3600,
            hit_count: 15,
            top_posts: vec![post("有钱花暴力催收", Some("https://weibo.example/1"))],
            alert_delivered: true,
            state,
            ..Incident::sample(7, "度小满", at(30, 0))
        };
        if state != IncidentState::Triggered {
            i.acked_by = Some(alice());
            i.acked_at = Some(at(30, 1));
            history.push(Transition {
                at: at(30, 1),
                to: IncidentState::Acknowledged,
                by: Some(alice()),
                note: "acknowledged".into(),
                via: None,
            });
        }
        if state == IncidentState::Resolved {
            i.resolved_by = Some(alice());
            i.resolved_at = Some(at(30, 2));
            history.push(Transition {
                at: at(30, 2),
                to: IncidentState::Resolved,
                by: Some(alice()),
                note: "resolved".into(),
                via: None,
            });
        }
        i.history = history;
        i
    }

    fn figures(mentions: u64, negative: u64, harm: f64) -> DailyFigures {
        DailyFigures {
            mentions,
            negative,
            harm,
            incidents_opened: 0,
        }
    }

    fn brand(name: &str) -> BrandOverview {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        BrandOverview {
            brand: name.into(),
            today: figures(200, 25, 3.14659),
            week: (0..7)
                .map(|d| {
                    let day = NaiveDate::from_ymd_opt(2026, 11, 24 + d).unwrap();
                    // Day 2 had no mentions at all: a gap in the rate.
                    let f = if d == 2 {
                        figures(0, 0, 0.0)
                    } else {
                        figures(100, u64::from(d) * 3, f64::from(d) * 0.5)
                    };
                    (day, f)
                })
                .collect(),
            hours: (0..24)
                .map(|h| {
                    let start = tz.with_ymd_and_hms(2026, 11, 30, h, 0, 0).unwrap();
                    (start, u64::from(h) * 4, u64::from(h % 5))
                })
                .collect(),
        }
    }

    fn full_overview() -> Overview {
        Overview {
            brands: vec![brand("度小满"), brand("有钱花")],
            open_incidents: vec![
                sample(IncidentState::Triggered),
                sample(IncidentState::Acknowledged),
            ],
            failing_sources: vec![(
                "tieba".into(),
                SourceHealth {
                    last_error: Some("HTTP 503".into()),
                    last_error_at: Some(at(30, 3)),
                    consecutive_failures: 4,
                    ..SourceHealth::default()
                },
            )],
            time_zone: "Asia/Shanghai".into(),
        }
    }

    fn stored(title: &str, url: Option<&str>, negative: bool) -> StoredHit {
        StoredHit {
            id: "00ff01".into(),
            hit: Hit {
                brand: "度小满".into(),
                source: "weibo".into(),
                url: url.map(Into::into),
                title: title.into(),
                snippet: format!("snippet of {title}"),
                at: at(30, 4),
                fetched_at: at(30, 4),
                score: -1.25,
                negative,
                terms: vec!["骗子".into()],
                severity: 1.0,
                crisis: vec![],
                amplification: 0,
                reposted_by: vec![],
            },
        }
    }

    /// The forms of `html`, each from `<form` to `</form>`.
    fn forms(html: &str) -> Vec<&str> {
        html.match_indices("<form")
            .map(|(start, _)| {
                let end = start + html[start..].find("</form>").unwrap();
                &html[start..end]
            })
            .collect()
    }

    /// Every post form carries the session's token.
    fn assert_csrf_everywhere(html: &str) {
        for form in forms(html) {
            if form.contains("method=\"post\"") && !form.contains("action=\"/login\"") {
                assert!(
                    form.contains("name=\"csrf\" value=\"csrf-TOKEN-123\""),
                    "a form without the token: {form}"
                );
            }
        }
    }

    /// Every link is either local or an http(s) link out with `rel="noopener noreferrer"`;
    /// nothing is loaded from elsewhere.
    fn assert_no_external_assets(html: &str) {
        let lower = html.to_lowercase();
        for banned in ["src=", "<link", "url(", "@import", "http-equiv"] {
            assert!(!lower.contains(banned), "{banned} in {html}");
        }
        for (start, _) in lower.match_indices("<a ") {
            let tag = &lower[start..start + lower[start..].find('>').unwrap()];
            let href_at = tag.find("href=\"").expect("a link without href") + 6;
            let href = &tag[href_at..href_at + tag[href_at..].find('"').unwrap()];
            if href.starts_with('/') && !href.starts_with("//") {
                continue;
            }
            assert!(
                href.starts_with("https://") || href.starts_with("http://"),
                "odd link {href}"
            );
            assert!(tag.contains("rel=\"noopener noreferrer\""), "{tag}");
        }
    }

    #[test]
    fn hostile_post_text_is_escaped_cut_and_not_linked() {
        let long_title = "坑".repeat(10_000);
        let mut i = sample(IncidentState::Triggered);
        i.brand = HOSTILE.into();
        i.top_posts = vec![
            post(HOSTILE, Some("javascript:alert(1)")),
            post(&long_title, Some("  JavaScript:alert(2)")),
            post("fine", Some("https://ok.example/a?b=1&c=\"2\"")),
        ];
        i.history[0].note = HOSTILE.into();
        let session = Session {
            name: HOSTILE.into(),
            csrf: "\"><script>alert(3)</script>".into(),
        };
        let mut p = page(Lang::Zh, Some(&session));
        p.flash = Some(HOSTILE.into());
        let html = incident(&p, &i).into_string();
        let lower = html.to_lowercase();

        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"));
        assert!(!lower.contains("href=\"javascript:"), "{html}");
        assert!(!lower.contains("href=\" javascript:") && !lower.contains("href=\"  javascript:"));
        // The bad URL is still shown, as text.
        assert!(html.contains("<span class=\"muted unlinked\">javascript:alert(1)</span>"));
        assert!(html.contains(
            "<a href=\"https://ok.example/a?b=1&amp;c=&quot;2&quot;\" rel=\"noopener noreferrer\""
        ));
        // The long title is cut to 120 characters, the last being the ellipsis.
        assert!(!html.contains(&long_title));
        assert!(html.contains(&format!("{}…", "坑".repeat(MAX_TITLE_CHARS - 1))));
        assert!(!html.contains(&"坑".repeat(MAX_TITLE_CHARS)));
        assert_no_external_assets(&html);

        // The same post text on the hit list and the overview.
        let page_data = HitPage {
            hits: vec![
                stored(HOSTILE, Some("javascript:alert(1)"), true),
                stored(
                    &long_title,
                    Some("data:text/html,<script>alert(4)</script>"),
                    true,
                ),
            ],
            next_cursor: None,
        };
        let filters = HitFilters {
            brand: Some(HOSTILE.into()),
            negative: None,
            source: Some(HOSTILE.into()),
            since: Some(HOSTILE.into()),
        };
        let html = hits(
            &p,
            &filters,
            &[HOSTILE.into()],
            &[],
            &page_data,
            Some(format!("/hits?since={HOSTILE}")),
        )
        .into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.to_lowercase().contains("href=\"javascript:"));
        assert!(!html.to_lowercase().contains("href=\"data:"));
        assert!(!html.contains(&long_title));

        let mut o = full_overview();
        o.brands[0].brand = HOSTILE.into();
        o.open_incidents[0].brand = HOSTILE.into();
        o.failing_sources[0].0 = HOSTILE.into();
        o.failing_sources[0].1.last_error = Some(HOSTILE.into());
        o.time_zone = HOSTILE.into();
        let html = overview(&p, &o).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"));

        let html = sources(&p, &o.failing_sources).into_string();
        assert!(!html.contains("<script>alert") && html.contains("&lt;script&gt;"));
        let html = login(&p, HOSTILE, Some(HOSTILE)).into_string();
        assert!(!html.contains("<script>alert") && html.contains("&lt;script&gt;"));
        let html = not_found(&p, HOSTILE).into_string();
        assert!(!html.contains("<script>alert") && html.contains("&lt;script&gt;"));
    }

    #[test]
    fn triggered_incident_offers_ack_and_resolve_with_the_token() {
        let s = session();
        let html =
            incident(&page(Lang::En, Some(&s)), &sample(IncidentState::Triggered)).into_string();
        assert!(
            html.contains("<form class=\"action\" method=\"post\" action=\"/incidents/7/ack\">")
        );
        assert!(html.contains("action=\"/incidents/7/resolve\""));
        assert!(html.contains("id=\"ack\""));
        assert!(html.contains("id=\"resolve\""));
        assert!(html.contains("<textarea name=\"note\" id=\"note\""));
        assert!(!html.contains("id=\"reopen\"") && !html.contains("/reopen"));
        assert!(!html.contains("login-to-act"));
        // ack, resolve, false positive and log out.
        assert_eq!(forms(&html).len(), 4);
        assert!(html.contains("action=\"/incidents/7/fp\"") && html.contains("id=\"fp\""));
        assert_eq!(html.matches("value=\"csrf-TOKEN-123\"").count(), 4);
        assert_csrf_everywhere(&html);
    }

    #[test]
    fn acknowledged_incident_offers_resolve_only() {
        let s = session();
        let html = incident(
            &page(Lang::En, Some(&s)),
            &sample(IncidentState::Acknowledged),
        )
        .into_string();
        assert!(!html.contains("id=\"ack\""));
        assert!(html.contains("id=\"resolve\"") && html.contains("id=\"note\""));
        assert!(!html.contains("id=\"reopen\""));
        assert!(html.contains("<dd id=\"owner\">alice"));
        assert_csrf_everywhere(&html);
    }

    #[test]
    fn resolved_incident_offers_reopen_only() {
        let s = session();
        let html =
            incident(&page(Lang::Zh, Some(&s)), &sample(IncidentState::Resolved)).into_string();
        assert!(html.contains("action=\"/incidents/7/reopen\""));
        assert!(html.contains("id=\"reopen\""));
        assert!(!html.contains("id=\"ack\"") && !html.contains("id=\"resolve\""));
        assert!(!html.contains("id=\"note\""));
        assert!(html.contains("重新打开") && html.contains("已解决"));
        assert_csrf_everywhere(&html);
    }

    #[test]
    fn anonymous_visitors_get_a_login_link_instead_of_forms() {
        for state in [
            IncidentState::Triggered,
            IncidentState::Acknowledged,
            IncidentState::Resolved,
        ] {
            let html = incident(&page(Lang::En, None), &sample(state)).into_string();
            assert!(forms(&html).is_empty(), "{state:?}: {html}");
            assert!(!html.contains("csrf"));
            for id in ["ack", "resolve", "reopen", "note"] {
                assert!(
                    !html.contains(&format!("id=\"{id}\"")),
                    "{state:?} shows {id}"
                );
            }
            assert!(html.contains("<a href=\"/login?next=/incidents/7\" id=\"login-to-act\">"));
            assert!(html.contains("<a href=\"/login\" id=\"login-link\">"));
        }
    }

    #[test]
    fn incident_shows_local_times_figures_and_timeline() {
        let html = incident(&page(Lang::Zh, None), &sample(IncidentState::Resolved)).into_string();
        // 00:00 UTC is 08:00 in Shanghai.
        assert!(
            html.contains("<time datetime=\"2026-11-30T00:00:00+00:00\">2026-11-30 08:00</time>")
        );
        assert!(
            html.contains("<dd>1h</dd>"),
            "the window, as people write it"
        );
        assert!(html.contains("<dd>12</dd>") && html.contains("<dd>15</dd>"));
        assert!(html.contains("<dd>1.5</dd>"));
        assert!(html.contains("-2.3"), "scores rounded");
        assert!(html.contains("暴力催收, 投诉"));
        assert!(html.contains("<a href=\"https://weibo.example/1\" rel=\"noopener noreferrer\""));
        let timeline = &html[html.find("id=\"timeline\"").unwrap()..];
        assert_eq!(timeline.matches("<li>").count(), 3);
        assert!(timeline.contains("<strong>系统</strong> · 待认领 — 12 negative in window"));
        assert!(timeline.contains("<strong>alice</strong> · 已解决 — resolved"));
        assert!(html.contains("<span class=\"badge resolved\">已解决</span>"));
    }

    #[test]
    fn overview_speaks_both_languages() {
        let o = full_overview();
        let zh = overview(&page(Lang::Zh, None), &o).into_string();
        let en = overview(&page(Lang::En, None), &o).into_string();
        assert!(zh.starts_with("<!DOCTYPE html><html lang=\"zh-CN\">"));
        assert!(en.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        for label in [
            Label::Overview,
            Label::MentionsToday,
            Label::NegativeHits,
            Label::ComplaintRate,
            Label::HarmIndex,
            Label::ComplaintRateTrend,
            Label::HarmTrend,
            Label::Volume24h,
            Label::OpenIncidents,
            Label::FailingSources,
            Label::Triggered,
            Label::Acknowledged,
        ] {
            assert!(zh.contains(label.t(Lang::Zh)), "zh lacks {label:?}");
            assert!(en.contains(label.t(Lang::En)), "en lacks {label:?}");
        }
        assert!(zh.contains("客诉率") && !zh.contains("Complaint rate"));
        assert!(en.contains("Complaint rate") && !en.contains("客诉率"));
    }

    #[test]
    fn overview_shows_figures_charts_incidents_and_failing_sources() {
        let html = overview(&page(Lang::En, None), &full_overview()).into_string();
        // 25 of 200 is 12.5%; the harm index has 2 decimals.
        assert!(html.contains("<dd>200</dd>") && html.contains("<dd>25</dd>"));
        assert!(html.contains("<dd>12.5%</dd>") && html.contains("<dd>3.15</dd>"));
        // Two brands, three charts each.
        assert_eq!(html.matches("<svg").count(), 6);
        // Per brand: the rate is two lines (a day without mentions splits it), harm one.
        assert_eq!(html.matches("<polyline").count(), 6);
        assert_eq!(html.matches("<rect").count(), 2 * 48);
        assert!(html.contains(">11-24</text>") && html.contains(">11-30</text>"));
        assert!(html.contains(">00:00</text>") && html.contains(">23:00</text>"));
        assert!(!html.contains("NaN"));
        // Open incidents link to their pages and show owners and local times.
        assert!(html.contains("<a href=\"/incidents/7\">#7</a>"));
        assert!(html.contains("Nobody") && html.contains("alice"));
        assert!(html.contains(">2026-11-30 08:00</time>"));
        // Failing sources with their last error.
        assert!(html.contains("tieba") && html.contains("HTTP 503"));
        assert!(!html.contains("id=\"no-brands\"") && !html.contains("id=\"no-incidents\""));
    }

    #[test]
    fn a_day_without_mentions_has_no_complaint_rate() {
        let mut o = full_overview();
        o.brands.truncate(1);
        o.brands[0].today = figures(0, 0, 0.0);
        let html = overview(&page(Lang::En, None), &o).into_string();
        assert!(html.contains("<dd>—</dd>"), "the rate");
        assert!(html.contains("<dd>0.00</dd>"), "the harm index");
    }

    #[test]
    fn empty_overview_says_so() {
        let o = Overview {
            time_zone: "Asia/Shanghai".into(),
            ..Overview::default()
        };
        for lang in [Lang::Zh, Lang::En] {
            let html = overview(&page(lang, None), &o).into_string();
            for (id, label) in [
                ("no-brands", Label::NoBrands),
                ("no-incidents", Label::NoOpenIncidents),
                ("sources-ok", Label::AllSourcesHealthy),
            ] {
                assert!(
                    html.contains(&format!("id=\"{id}\">{}</p>", label.t(lang))),
                    "{lang:?} lacks {id}"
                );
            }
            assert!(!html.contains("<svg") && !html.contains("<table"));
        }
    }

    #[test]
    fn hits_page_keeps_filters_and_links_the_next_page() {
        let s = session();
        let filters = HitFilters {
            brand: Some("有钱花".into()),
            negative: Some(true),
            source: Some("gone-source".into()),
            since: Some("24h".into()),
        };
        let page_data = HitPage {
            hits: vec![
                stored("催收电话打到单位", Some("https://tieba.example/p/1"), true),
                stored("", None, false),
            ],
            next_cursor: Some("abc".into()),
        };
        let html = hits(
            &page(Lang::Zh, Some(&s)),
            &filters,
            &["度小满".into(), "有钱花".into()],
            &["weibo".into()],
            &page_data,
            Some("/hits?brand=有钱花&cursor=abc".into()),
        )
        .into_string();
        assert!(html.contains("<form class=\"filters\" method=\"get\" action=\"/hits\">"));
        assert!(html.contains("<option value=\"有钱花\" selected>有钱花</option>"));
        assert!(html.contains("<option value=\"度小满\">度小满</option>"));
        assert!(html.contains("<option value=\"true\" selected>是</option>"));
        // A source no longer configured still shows as chosen.
        assert!(html.contains("<option value=\"gone-source\" selected>gone-source</option>"));
        assert!(html.contains("name=\"since\" id=\"since\"") && html.contains("value=\"24h\""));
        assert!(html.contains("id=\"filter\""));
        assert!(html.contains("<tr class=\"negative\" id=\"hit-00ff01\">"));
        assert!(html.contains("（无标题）"));
        assert!(html.contains("-1.2") || html.contains("-1.3"));
        assert!(html
            .contains("<a href=\"/hits?brand=有钱花&amp;cursor=abc\" rel=\"next\" id=\"next\">"));
        assert_csrf_everywhere(&html);
        assert_no_external_assets(&html);

        let html = hits(
            &page(Lang::En, None),
            &HitFilters::default(),
            &[],
            &[],
            &HitPage {
                hits: vec![],
                next_cursor: None,
            },
            None,
        )
        .into_string();
        assert!(html.contains("id=\"no-hits\"") && !html.contains("id=\"next\""));
        assert!(html.contains("<option value=\"\" selected>Any</option>"));
    }

    #[test]
    fn sources_page_highlights_failing_rows() {
        let ok = SourceHealth {
            last_poll_at: Some(at(30, 5)),
            last_success_at: Some(at(30, 5)),
            last_new_items: 3,
            ..SourceHealth::default()
        };
        let failing = SourceHealth {
            last_poll_at: Some(at(30, 5)),
            last_error: Some("timed out".into()),
            last_error_at: Some(at(30, 5)),
            last_error_class: Some(crate::fetch::ErrorClass::Timeout),
            consecutive_failures: 2,
            items_seen: 41,
            unhealthy: Some("failing for over 6h".into()),
            ..SourceHealth::default()
        };
        let html = sources(
            &page(Lang::En, None),
            &[("weibo".into(), ok), ("tieba".into(), failing)],
        )
        .into_string();
        assert_eq!(html.matches("<tr class=\"failing\">").count(), 1);
        let failing_row = &html[html.find("<tr class=\"failing\">").unwrap()..];
        assert!(
            failing_row.starts_with("<tr class=\"failing\"><td>tieba <span class=\"unhealthy\"")
        );
        assert!(failing_row.contains("timed out") && failing_row.contains("never"));
        assert!(
            failing_row.contains("<td>timeout</td>")
                && failing_row.contains("<td class=\"num\">41</td>")
        );
        assert!(
            failing_row.contains("title=\"failing for over 6h\">⚠ Alerted"),
            "{failing_row}"
        );
        assert!(html.contains("<td>weibo</td>"));
        let html = sources(&page(Lang::Zh, None), &[]).into_string();
        assert!(html.contains("id=\"no-sources\">尚未配置来源。"));
    }

    #[test]
    fn login_form_has_the_fields_the_handler_reads() {
        let html = login(&page(Lang::En, None), "/incidents/7", Some("wrong token")).into_string();
        assert!(html.contains("<form class=\"login\" method=\"post\" action=\"/login\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"next\" value=\"/incidents/7\">"));
        assert!(html.contains("name=\"name\" id=\"name\""));
        assert!(html.contains("<input type=\"password\" name=\"token\" id=\"token\""));
        assert!(html.contains("id=\"login\""));
        assert!(html.contains("id=\"login-error\">wrong token</p>"));
        let html = login(&page(Lang::Zh, None), "/", None).into_string();
        assert!(!html.contains("login-error"));
    }

    #[test]
    fn not_found_names_what_was_missing() {
        let html = not_found(&page(Lang::En, None), "incident 42").into_string();
        assert!(html.contains("<h1>Not found</h1>") && html.contains(">incident 42</p>"));
        assert!(html.contains("<a href=\"/\">Back to the overview</a>"));
    }

    #[test]
    fn only_live_pages_refresh_and_nothing_is_loaded_from_elsewhere() {
        let s = session();
        let p = page(Lang::Zh, Some(&s));
        let empty = HitPage {
            hits: vec![],
            next_cursor: None,
        };
        let live = [
            overview(&p, &full_overview()),
            incident(&p, &sample(IncidentState::Triggered)),
            sources(&p, &full_overview().failing_sources),
        ];
        let still = [
            hits(&p, &HitFilters::default(), &[], &[], &empty, None),
            login(&page(Lang::Zh, None), "/", None),
            not_found(&p, "x"),
        ];
        for html in live.iter().map(|m| m.clone().into_string()) {
            assert!(html.contains("<body data-autorefresh>"));
            assert_eq!(html.matches("<script>").count(), 1);
            assert!(html.contains("location.reload()"));
            assert!(html.contains("30000"));
            assert_no_external_assets(&html);
            assert_csrf_everywhere(&html);
        }
        for html in still.iter().map(|m| m.clone().into_string()) {
            assert!(!html.contains("data-autorefresh"), "{html}");
            assert!(!html.contains("<script"), "{html}");
            assert_no_external_assets(&html);
            assert_csrf_everywhere(&html);
        }
    }

    #[test]
    fn nav_marks_the_current_page_and_the_session() {
        let s = session();
        let html = sources(&page(Lang::En, Some(&s)), &[]).into_string();
        assert!(html.contains("<a href=\"/sources\" aria-current=\"page\">Sources</a>"));
        assert!(html.contains("<a href=\"/\">Overview</a>"));
        assert!(html.contains("<strong>alice</strong>"));
        assert!(html.contains("<form class=\"inline\" method=\"post\" action=\"/logout\">"));
        assert!(html.contains("id=\"logout\""));
        let mut p = page(Lang::En, None);
        p.flash = Some("already acknowledged by alice".into());
        let html = sources(&p, &[]).into_string();
        assert!(html.contains("id=\"flash\">already acknowledged by alice</p>"));
        assert!(!html.contains("logout"));
    }

    #[test]
    fn only_http_urls_are_links() {
        for good in [
            "https://weibo.com/1",
            "http://x.example",
            "HTTPS://Example.com/a?b#c",
            "  https://padded.example  ",
        ] {
            assert_eq!(safe_href(good), Some(good.trim()), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,x",
            "vbscript:x",
            "//evil.example/x",
            "/local",
            "https://",
            "https:///path",
            "http:evil.example",
            "https://a b.example",
            "https://a\tb.example",
            "https://x.example/\u{0}",
            "ftp://x.example",
            "",
        ] {
            assert_eq!(safe_href(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly10!", 10), "exactly10!");
        assert_eq!(truncate("eleven chars", 10), "eleven ch…");
        assert_eq!(truncate(&"坑".repeat(5), 3), "坑坑…");
        assert_eq!(truncate("abc", 0), "…");
        assert!(matches!(truncate("abc", 3), Cow::Borrowed(_)));
    }

    #[test]
    fn pre_escaped_wraps_only_the_constant_style_and_script() {
        let source = include_str!("pages.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let uses: Vec<&str> = code
            .match_indices("PreEscaped(")
            .map(|(at, _)| {
                let rest = &code[at..];
                &rest[..rest.find(')').unwrap() + 1]
            })
            .collect();
        assert_eq!(uses, ["PreEscaped(CSS)", "PreEscaped(AUTOREFRESH_JS)"]);
        let style_and_script = format!("{CSS}{AUTOREFRESH_JS}");
        assert!(
            !style_and_script.contains("</"),
            "would close its element early"
        );
        assert!(!style_and_script.contains("http"));
    }
}
