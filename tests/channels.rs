//! The webhook channels over the real wire, against fake receivers that check each
//! platform's key and signature: delivery, refusals and their classification, mentions,
//! escaping of hostile post text, length limits, and secrets kept out of every error.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::webhooks::{Failure, FakeReceiver, Platform};
use serde_json::Value;
use yuqing::config::{ChannelConfig, ChannelKind, ChannelUrl, TierConfig};
use yuqing::incident::Notice;
use yuqing::notify::channel::{Channel, Content, Message, SendError};
use yuqing::notify::webhooks;
use yuqing::notify::HowToAct;
use yuqing::store::{Incident, IncidentState, PostSummary};

const KEY: &str = "k3y0f7he-h00k-5ecret-0123456789ab";
const SECRET: &str = "SECsigning0secret42";
const CONSOLE: &str = "https://yuqing.intra.example";
const CHANNEL: &str = "crisis-room";

fn platform_kind(platform: Platform) -> ChannelKind {
    match platform {
        Platform::Feishu => ChannelKind::Feishu,
        Platform::DingTalk => ChannelKind::Dingtalk,
        Platform::WeCom => ChannelKind::Wecom,
        Platform::Slack => ChannelKind::Slack,
        Platform::Webhook => ChannelKind::Webhook,
    }
}

fn signs(platform: Platform) -> bool {
    matches!(
        platform,
        Platform::Feishu | Platform::DingTalk | Platform::Webhook
    )
}

/// A channel built the way the daemon builds it, from config and environment, pointed at
/// `url` and signing with `secret`.
fn channel(platform: Platform, url: String, secret: Option<&str>) -> Arc<dyn Channel> {
    let config = ChannelConfig {
        name: CHANNEL.into(),
        kind: platform_kind(platform),
        url: ChannelUrl::Env("HOOK_URL".into()),
        secret_env: secret.map(|_| "HOOK_SECRET".into()),
    };
    let env: HashMap<&str, String> = [("HOOK_URL", url)]
        .into_iter()
        .chain(secret.map(|s| ("HOOK_SECRET", s.to_string())))
        .collect();
    let clock: webhooks::Clock = Arc::new(|| Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap());
    let (mut channels, _) = webhooks::build_with_clock(
        &[config],
        |var| env.get(var).cloned(),
        reqwest::Client::new(),
        clock,
    )
    .expect("channel builds");
    channels.pop().unwrap()
}

/// A receiver for `platform` and a channel that holds the right key and secret.
async fn pair(platform: Platform) -> (FakeReceiver, Arc<dyn Channel>) {
    let secret = signs(platform).then_some(SECRET);
    let receiver = FakeReceiver::start(platform, KEY, secret).await;
    let channel = channel(platform, receiver.url(), secret);
    (receiver, channel)
}

fn post(title: &str, url: &str, score: f64) -> PostSummary {
    PostSummary {
        source: "黑猫投诉".into(),
        url: Some(url.into()),
        title: title.into(),
        score,
        terms: vec!["暴力催收".into()],
        at: Utc.with_ymd_and_hms(2024, 5, 1, 7, 55, 0).unwrap(),
        excerpt: String::new(),
    }
}

fn incident(posts: Vec<PostSummary>) -> Incident {
    Incident {
        id: 7,
        brand: "度小满".into(),
        state: IncidentState::Triggered,
        opened_at: Utc.with_ymd_and_hms(2024, 5, 1, 7, 58, 0).unwrap(),
        window_count: 12,
        baseline: 1.5,
        window_secs: 900,
        hit_count: 12,
        top_posts: posts,
        tier: 0,
        policy_round: 0,
        next_page_at: None,
        alert_delivered: false,
        acked_by: None,
        acked_at: None,
        resolved_by: None,
        resolved_at: None,
        history: Vec::new(),
        opened_because: String::new(),
        calm_since: None,
        next_remind_at: None,
        topic_terms: vec!["爆通讯录".into(), "骚扰".into()],
        categories: BTreeMap::from([("violent_collection".into(), 9)]),
        term_counts: BTreeMap::new(),
    }
}

fn tier(targets: &[&str]) -> TierConfig {
    TierConfig {
        name: "on-call responder".into(),
        mention: vec!["@pr_oncall".into()],
        ack_timeout: Duration::from_secs(600),
        quiet_hours: None,
        targets: BTreeMap::from([(
            CHANNEL.to_string(),
            targets.iter().map(|t| t.to_string()).collect(),
        )]),
    }
}

fn opened(incident: Incident, targets: &[&str]) -> Message {
    Message {
        content: Content::Incident(Box::new(Notice::Opened {
            incident,
            tier: Some(tier(targets)),
        })),
        how: HowToAct {
            console_url: Some(CONSOLE.into()),
            chat_commands: false,
        },
        possible_repeat: false,
        earlier: Vec::new(),
        image: None,
    }
}

fn ordinary() -> Message {
    opened(
        incident(vec![
            post("度小满催收打电话给我全家", "https://tousu.example/1", -4.2),
            post("有钱花利息太高", "https://tousu.example/2", -2.5),
        ]),
        &[],
    )
}

const ALL: [Platform; 5] = [
    Platform::Feishu,
    Platform::DingTalk,
    Platform::WeCom,
    Platform::Slack,
    Platform::Webhook,
];

fn assert_clean(reason: &str) {
    for secret in [KEY, SECRET, "k3y0f7he"] {
        assert!(!reason.contains(secret), "secret in reason: {reason}");
    }
}

#[tokio::test]
async fn feishu_sends_a_signed_card_with_mentions_posts_and_a_console_button() {
    let (fake, ch) = pair(Platform::Feishu).await;
    ch.send(&opened(
        incident(vec![post("度小满催收", "https://t.example/1", -4.0)]),
        &["ou_alice", "ou_bob"],
    ))
    .await
    .expect("delivered");
    let got = fake.only().body;
    assert_eq!(got["msg_type"], "interactive");
    assert_eq!(got["timestamp"], "1714550400", "seconds, as a string");
    let card = &got["card"];
    assert_eq!(card["header"]["template"], "red");
    let header = card["header"]["title"]["content"].as_str().unwrap();
    assert!(
        header.contains("度小满") && header.contains("#7"),
        "{header}"
    );
    let text = card.to_string();
    assert!(
        text.contains("<at id=ou_alice></at> <at id=ou_bob></at>"),
        "{text}"
    );
    assert!(text.contains("(https://t.example/1)"), "post link: {text}");
    assert!(text.contains("**Why**") && text.contains("12 negative posts in the last 15m"));
    assert!(
        text.contains("violent&#95;collection 9"),
        "topic, escaped: {text}"
    );
    let button = &card["elements"].as_array().unwrap().last().unwrap()["actions"][0];
    assert_eq!(button["url"], format!("{CONSOLE}/incidents/7"));
}

#[tokio::test]
async fn dingtalk_sends_an_action_card_or_markdown_that_mentions_mobiles() {
    let (fake, ch) = pair(Platform::DingTalk).await;
    ch.send(&ordinary()).await.expect("delivered");
    ch.send(&opened(incident(vec![]), &["13800000000"]))
        .await
        .expect("delivered");
    let [card, page] = <[_; 2]>::try_from(fake.accepted()).unwrap();
    assert!(card
        .path_and_query
        .contains("timestamp=1714550400000&sign="));
    assert_eq!(card.body["msgtype"], "actionCard");
    let btn = &card.body["actionCard"]["btns"][0];
    assert_eq!(btn["actionURL"], format!("{CONSOLE}/incidents/7"));
    assert!(card.body["actionCard"]["text"]
        .as_str()
        .unwrap()
        .contains("[度小满催收打电话给我全家](https://tousu.example/1)"));
    // actionCard cannot @ anyone, so a page with targets goes as markdown.
    assert_eq!(page.body["msgtype"], "markdown");
    assert_eq!(page.body["at"]["atMobiles"][0], "13800000000");
    let text = page.body["markdown"]["text"].as_str().unwrap();
    assert!(text.contains("@13800000000"), "{text}");
    assert!(text.contains(&format!("({CONSOLE}/incidents/7)")), "{text}");
}

#[tokio::test]
async fn wecom_sends_markdown_or_text_with_mentioned_list() {
    let (fake, ch) = pair(Platform::WeCom).await;
    ch.send(&ordinary()).await.expect("delivered");
    ch.send(&opened(incident(vec![]), &["zhangsan", "13800000000"]))
        .await
        .expect("delivered");
    let [md, page] = <[_; 2]>::try_from(fake.accepted()).unwrap();
    assert_eq!(md.body["msgtype"], "markdown");
    let content = md.body["markdown"]["content"].as_str().unwrap();
    assert!(content.contains("[度小满催收打电话给我全家](https://tousu.example/1)"));
    assert!(
        content.ends_with(&format!("({CONSOLE}/incidents/7)")),
        "{content}"
    );
    assert_eq!(page.body["msgtype"], "text");
    assert_eq!(
        page.body["text"]["mentioned_list"],
        serde_json::json!(["zhangsan"])
    );
    assert_eq!(
        page.body["text"]["mentioned_mobile_list"],
        serde_json::json!(["13800000000"])
    );
    assert!(page.body["text"]["content"]
        .as_str()
        .unwrap()
        .contains("yuqing incident #7"));
}

#[tokio::test]
async fn slack_sends_blocks_with_a_fallback_mentions_and_a_button() {
    let (fake, ch) = pair(Platform::Slack).await;
    ch.send(&opened(
        incident(vec![post("度小满催收", "https://t.example/1", -4.0)]),
        &["U024BE7LH"],
    ))
    .await
    .expect("delivered");
    let got = fake.only().body;
    let blocks = got["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(got["text"].as_str().unwrap().starts_with("<@U024BE7LH> "));
    let all = got.to_string();
    assert!(all.contains("<https://t.example/1|度小满催收>"), "{all}");
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    assert_eq!(
        actions["elements"][0]["url"],
        format!("{CONSOLE}/incidents/7")
    );
}

#[tokio::test]
async fn generic_webhook_sends_the_documented_schema_signed() {
    let (fake, ch) = pair(Platform::Webhook).await;
    ch.send(&opened(
        incident(vec![post("度小满催收", "https://t.example/1", -4.0)]),
        &["team-a"],
    ))
    .await
    .expect("delivered");
    let got = fake.only();
    assert_eq!(got.headers["x-yuqing-timestamp"], "1714550400");
    let b = &got.body;
    assert_eq!(b["version"], 1);
    assert_eq!(b["kind"], "incident.opened");
    assert_eq!(b["possible_repeat"], false);
    assert_eq!(b["targets"], serde_json::json!(["team-a"]));
    let i = &b["incident"];
    assert_eq!(i["id"], 7);
    assert_eq!(i["brand"], "度小满");
    assert_eq!(i["state"], "triggered");
    assert_eq!(i["hit_count"], 12);
    assert_eq!(i["window_count"], 12);
    assert_eq!(i["baseline"], 1.5);
    assert_eq!(i["topic_terms"], serde_json::json!(["爆通讯录", "骚扰"]));
    assert_eq!(i["categories"]["violent_collection"], 9);
    assert_eq!(i["top_posts"][0]["url"], "https://t.example/1");
    assert_eq!(i["url"], format!("{CONSOLE}/incidents/7"));
    assert!(b["text"]
        .as_str()
        .unwrap()
        .starts_with("🚨 yuqing incident #7 — 度小满"));
    assert_eq!(b["tier"]["name"], "on-call responder");
}

#[tokio::test]
async fn a_wrong_secret_or_key_fails_with_the_platforms_error_and_is_not_permanent() {
    let expected = [
        (Platform::Feishu, "19021"),
        (Platform::DingTalk, "310000"),
        (Platform::Webhook, "HTTP 401"),
    ];
    for (platform, says) in expected {
        let fake = FakeReceiver::start(platform, KEY, Some(SECRET)).await;
        let ch = channel(platform, fake.url(), Some("SECthe-wrong-one"));
        let err = ch.send(&ordinary()).await.unwrap_err();
        assert!(err.reason.contains(says), "{platform:?}: {err:?}");
        assert!(err.reason.starts_with(CHANNEL), "{err:?}");
        assert!(!err.permanent, "an operator can fix the secret: {err:?}");
        assert!(!err.reason.contains("SECthe-wrong-one"), "{err:?}");
        assert_eq!(fake.refused(), 1);
        assert!(fake.accepted().is_empty());
    }
    // Unsigned platforms: the key in the URL is the credential.
    for (platform, says) in [
        (Platform::WeCom, "93000"),
        (Platform::Slack, "invalid_token"),
        (Platform::Feishu, "19001"),
        (Platform::DingTalk, "300001"),
    ] {
        let fake = FakeReceiver::start(platform, KEY, None).await;
        let ch = channel(platform, fake.url_with_key("wr0ng-key-12345678"), None);
        let err = ch.send(&ordinary()).await.unwrap_err();
        assert!(err.reason.contains(says), "{platform:?}: {err:?}");
        assert!(!err.permanent, "{platform:?}: {err:?}");
        assert!(!err.reason.contains("wr0ng-key-12345678"), "{err:?}");
    }
}

#[tokio::test]
async fn failures_are_classified_on_every_platform() {
    for platform in ALL {
        let (fake, ch) = pair(platform).await;
        let attempt = |failure: Failure| {
            fake.fail_next(failure);
            let ch = ch.clone();
            async move { ch.send(&ordinary()).await.unwrap_err() }
        };
        let err: SendError = attempt(Failure::BadGateway).await;
        assert!(
            !err.permanent && err.reason.contains("502"),
            "{platform:?}: {err:?}"
        );
        let err = attempt(Failure::TooManyRequests(7)).await;
        assert_eq!(
            err.retry_after,
            Some(Duration::from_secs(7)),
            "{platform:?}"
        );
        assert!(!err.permanent);
        let err = attempt(Failure::RateLimitCode).await;
        assert!(!err.permanent, "rate limits pass: {platform:?}: {err:?}");
        let err = attempt(Failure::Rejected).await;
        assert!(
            err.permanent,
            "a refused message stays refused: {platform:?}: {err:?}"
        );
        // And then it works again.
        ch.send(&ordinary())
            .await
            .expect("delivered after the failures");
        assert_eq!(fake.accepted().len(), 1);
    }
}

#[tokio::test]
async fn secrets_never_appear_in_a_reason_even_when_the_server_echoes_the_url() {
    for platform in ALL {
        let (fake, ch) = pair(platform).await;
        fake.fail_next(Failure::EchoPath404);
        let err = ch.send(&ordinary()).await.unwrap_err();
        assert!(
            err.reason.contains("404") && err.reason.contains("[redacted]"),
            "{err:?}"
        );
        assert_clean(&err.reason);
        assert!(err.permanent, "a 404 is not retried: {platform:?}");
    }
    // No answer at all: the connection error must not quote the URL either.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    for platform in ALL {
        let url = match platform {
            Platform::DingTalk => format!("http://127.0.0.1:{port}/robot/send?access_token={KEY}"),
            _ => format!("http://127.0.0.1:{port}/hook/{KEY}"),
        };
        let ch = channel(platform, url, signs(platform).then_some(SECRET));
        let err = ch.send(&ordinary()).await.unwrap_err();
        assert!(!err.permanent, "{platform:?}: {err:?}");
        assert!(err.reason.contains("no answer"), "{err:?}");
        assert_clean(&err.reason);
    }
}

const HOSTILE: &str =
    "<at id=all></at> <!channel> [点我](http://evil.example) **粗** <b>x</b> @13800000000";

fn delivered_text(platform: Platform, body: &Value) -> String {
    match platform {
        Platform::Feishu => body["card"]["elements"].to_string(),
        Platform::DingTalk => body["actionCard"]["text"].as_str().unwrap().to_string(),
        Platform::WeCom => body["markdown"]["content"].as_str().unwrap().to_string(),
        Platform::Slack => body["blocks"].to_string() + body["text"].as_str().unwrap(),
        Platform::Webhook => body["incident"]["top_posts"][0]["title"]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

#[tokio::test]
async fn hostile_post_text_cannot_mention_link_or_format() {
    for platform in ALL {
        let (fake, ch) = pair(platform).await;
        let message = opened(
            incident(vec![post(HOSTILE, "javascript:alert(1)", -3.0)]),
            &[],
        );
        ch.send(&message).await.expect("delivered");
        let text = delivered_text(platform, &fake.only().body);
        if platform == Platform::Webhook {
            // JSON carries the text as data, unchanged, for the receiver to escape.
            assert_eq!(text, HOSTILE);
            continue;
        }
        // Slack renders no Markdown links or emphasis: only `<…>` is markup there, and the
        // plain fallback may quote the URL as text.
        let injections: &[&str] = if platform == Platform::Slack {
            &[
                "<at id=all>",
                "<!channel>",
                "<b>",
                "<javascript:",
                "<http://evil",
            ]
        } else {
            &[
                "<at id=all>",
                "<!channel>",
                "](http://evil",
                "<b>",
                "javascript:",
            ]
        };
        for injected in injections {
            assert!(
                !text.contains(injected),
                "{platform:?} let {injected:?} through: {text}"
            );
        }
        if platform != Platform::Slack {
            assert!(!text.contains("**粗**"), "{platform:?}: {text}");
        }
        assert!(
            text.contains("点我"),
            "the words themselves stay: {platform:?}: {text}"
        );
    }
}

#[tokio::test]
async fn long_content_is_trimmed_within_each_platforms_limit() {
    let long_title = "度小满暴力催收<b>&[x]".repeat(2_000);
    let long_body = "每日舆情摘要 *重点* 第一行\n".repeat(5_000);
    for platform in ALL {
        let (fake, ch) = pair(platform).await;
        ch.send(&opened(
            incident(vec![
                post(&long_title, "https://t.example/1", -4.0),
                post(&long_title, "https://t.example/2", -3.0),
                post(&long_title, "https://t.example/3", -2.0),
            ]),
            &[],
        ))
        .await
        .expect("a long alert is trimmed, not refused");
        let text = Message {
            content: Content::Text {
                title: "日报 / daily digest".into(),
                body: long_body.clone(),
                markdown: false,
            },
            how: HowToAct::default(),
            possible_repeat: true,
            earlier: Vec::new(),
            image: None,
        };
        ch.send(&text).await.expect("a long digest is trimmed");
        for got in fake.accepted() {
            let b = &got.body;
            match platform {
                Platform::Feishu => assert!(got.raw.len() < 30_000, "{}", got.raw.len()),
                Platform::DingTalk => assert!(got.raw.len() < 20_000, "{}", got.raw.len()),
                Platform::WeCom => {
                    let content = b["markdown"]["content"].as_str().unwrap();
                    assert!(content.len() <= 4096, "{}", content.len());
                    assert!(content.contains('…'), "the cut is marked");
                }
                Platform::Slack => {
                    for block in b["blocks"].as_array().unwrap() {
                        if let Some(t) = block["text"]["text"].as_str() {
                            let limit = if block["type"] == "header" { 150 } else { 3000 };
                            assert!(t.chars().count() <= limit, "{}", t.chars().count());
                        }
                    }
                }
                Platform::Webhook => {}
            }
            if platform != Platform::Webhook {
                assert!(got.raw.contains('…'), "{platform:?}: the cut is marked");
                // No escape cut in half anywhere.
                assert!(!got.raw.contains("&l…") && !got.raw.contains("&#…"));
            }
        }
        assert_eq!(fake.accepted().len(), 2);
    }
}

#[tokio::test]
async fn a_possible_repeat_says_so() {
    for platform in ALL {
        let (fake, ch) = pair(platform).await;
        let mut message = ordinary();
        message.possible_repeat = true;
        ch.send(&message).await.expect("delivered");
        let got = fake.only();
        assert!(
            got.raw.contains("possible repeat") || got.body["possible_repeat"] == true,
            "{platform:?}: {}",
            got.raw
        );
    }
}

#[test]
fn missing_environment_variables_are_each_named_with_their_channel() {
    let configs = [
        ChannelConfig {
            name: "feishu-pr".into(),
            kind: ChannelKind::Feishu,
            url: ChannelUrl::Env("FEISHU_URL".into()),
            secret_env: Some("FEISHU_SECRET".into()),
        },
        ChannelConfig {
            name: "slack-ops".into(),
            kind: ChannelKind::Slack,
            url: ChannelUrl::Env("SLACK_URL".into()),
            secret_env: None,
        },
    ];
    let env = |var: &str| (var == "FEISHU_URL").then(|| "https://x.example/hook/abc".to_string());
    let err = webhooks::build(&configs, env, reqwest::Client::new())
        .err()
        .expect("missing variables are an error")
        .to_string();
    assert!(
        err.contains("channel \"feishu-pr\": environment variable FEISHU_SECRET"),
        "{err}"
    );
    assert!(
        err.contains("channel \"slack-ops\": environment variable SLACK_URL"),
        "{err}"
    );

    let env = |var: &str| match var {
        "FEISHU_URL" => Some("https://open.example/open-apis/bot/v2/hook/5ecret-hook-id-9".into()),
        "FEISHU_SECRET" => Some("signing-secret-1".into()),
        "SLACK_URL" => Some("https://hooks.example/services/T1/B2/slackkey0123456789abcdef".into()),
        _ => None,
    };
    let (channels, redactor) = webhooks::build(&configs, env, reqwest::Client::new()).unwrap();
    assert_eq!(channels.len(), 2);
    assert_eq!(channels[0].name(), "feishu-pr");
    assert_eq!(channels[1].kind(), "slack");
    let line = "POST /open-apis/bot/v2/hook/5ecret-hook-id-9 sign=signing-secret-1 \
                /services/T1/B2/slackkey0123456789abcdef";
    let red = redactor.redact(line);
    for secret in [
        "5ecret-hook-id-9",
        "signing-secret-1",
        "slackkey0123456789abcdef",
    ] {
        assert!(!red.contains(secret), "{red}");
    }
}
