//! yuqing (舆情): watches the open web for trouble about a brand, tells the right person within a
//! minute, and does not let go until a named human owns the problem.
//!
//! # Layout
//!
//! Data flows one way, and the modules follow it:
//!
//! | stage | module | owns |
//! |---|---|---|
//! | source | [`source`] | when each source is polled: interval, backoff, validators, the stored next check; health limits and their notices |
//! | fetch | [`fetch`] | HTTP: one client, timeouts, body cap, conditional GET, per-host and global caps, charset → UTF-8, error classes |
//! | poll | [`poller`] | one task that starts each source's poll when it is due, books the result (health, schedule) and hands analyzed posts to the recorder |
//! | collect | [`collect`] | one poll of one source: its requests (brands, pages), parsing, new posts, followed item pages |
//! | parse | [`parse`] | bytes → [`post::Post`]s, one parser per format (feed, html, json) and the dates they hold |
//! | post | [`post`] | the `Post` type and text clean-up |
//! | dedupe | [`dedupe`] | post identity (GUID, canonical URL, content hash); repost chains and SimHash near-copies, which amplify the original |
//! | analyze | [`analyze`] | jieba, brand mentions (every spelling: `analyze::fold`), target-aware sentiment (CPU only) |
//! | store | [`store`] | sled: the only module that touches it |
//! | detect | [`detect`] | the seasonal spike test over count series (`spike`, fed per brand by `watch`, and by `backtest`); the warm-up threshold → `Signal` |
//! | incident | [`incident`] | Triggered → Acknowledged → Resolved: escalation, critical posts, auto-resolve, reopen, reminders, silences, topic terms |
//! | notify | [`notify`] | console and Telegram delivery, chat commands; Feishu, DingTalk, WeCom, Slack and generic-webhook channels (`notify::webhooks::build`) |
//! | digest | [`digest`] | the daily digest's content (figures against the week before, top posts, MTTA/MTTR) and when it is due |
//! | diagnosis | [`diagnosis`] | the incident report (问题诊断报告): timeline, counts, topic, top posts as Markdown |
//! | chart | [`chart`] | the negative-volume PNG (24 h against the baseline band, incident window shaded) for chat |
//! | metrics | [`metrics`] | counters and gauges for /metrics |
//! | admin | [`admin`] | the HTTP API, metrics endpoint, web console and the CLI's client |
//! | demo | [`demo`] | `yuqing demo`: a scripted crisis served as loopback feeds, and its config |
//!
//! [`config`] reads `sources.toml`; [`daemon`] wires the stages into tasks joined by bounded
//! channels; [`shutdown`] carries the stop signal; [`report`] sums polling up for the log;
//! [`feedback`] keeps staff verdicts on hits for retraining; [`replay`] exports kept posts and
//! replays them on a simulated clock; [`eval`] measures the scorer; [`markdown`] escapes quoted
//! text in the reports; [`outbox`] stores every message before its channel's worker sends it.

pub mod admin;
pub mod analyze;
pub mod chart;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod dedupe;
pub mod demo;
pub mod detect;
pub mod diagnosis;
pub mod digest;
pub mod eval;
pub mod feedback;
pub mod fetch;
pub mod incident;
pub mod markdown;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod parse;
pub mod poller;
pub mod post;
pub mod replay;
pub mod report;
pub mod shutdown;
pub mod source;
pub mod store;
