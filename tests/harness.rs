//! Self-test of the loopback harness in `tests/common`, using the real HTTP
//! clients (reqwest, teloxide) over real sockets on 127.0.0.1.

mod common;

use std::time::Duration;

use common::feeds::{atom, rss, FeedServer, Item};
use common::telegram::{FakeTelegram, BOT_ID, BOT_USERNAME};
use futures_util::StreamExt;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::*;
use teloxide::types::UpdateKind;
use teloxide::update_listeners::{AsUpdateStream, Polling};

const T: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(T)
        .build()
        .unwrap()
}

fn bot(fake: &FakeTelegram) -> Bot {
    Bot::new("123:TEST").set_api_url(reqwest::Url::parse(&fake.api_url()).unwrap())
}

fn entry_ids(bytes: &[u8]) -> Vec<String> {
    let feed = feed_rs::parser::parse(bytes).expect("feed parses");
    feed.entries.into_iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn feed_server_sequence_status_and_hits() {
    let srv = FeedServer::start().await;
    assert!(srv.url("/rss.xml").starts_with("http://127.0.0.1:"));

    let first = rss(
        "品牌 & <news>",
        &[Item::new("a1", "第一条 <b>", "差评 & 投诉")],
    );
    let second = rss(
        "品牌 & <news>",
        &[
            Item::new("a2", "第二条", "退款"),
            Item::new("a1", "第一条 <b>", "差评 & 投诉"),
        ],
    );
    srv.set_sequence(
        "/rss.xml",
        "application/rss+xml",
        vec![first.into_bytes(), second.into_bytes()],
    );

    let c = client();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let resp = c.get(srv.url("/rss.xml")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/rss+xml"
        );
        seen.push(entry_ids(&resp.bytes().await.unwrap()));
    }
    assert_eq!(seen[0], vec!["a1"]);
    assert_eq!(seen[1], vec!["a2", "a1"]);
    assert_eq!(seen[2], seen[1], "last body repeats");
    assert_eq!(srv.hits("/rss.xml"), 3);

    let feed = feed_rs::parser::parse(
        &c.get(srv.url("/rss.xml"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()[..],
    )
    .unwrap();
    assert_eq!(feed.title.unwrap().content, "品牌 & <news>");
    assert_eq!(
        feed.entries[1].title.as_ref().unwrap().content,
        "第一条 <b>"
    );
    assert!(feed.entries[0].published.is_some());

    // Unknown path -> 404 (still counted as a hit).
    let resp = c.get(srv.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(srv.hits("/nope"), 1);

    // Error status.
    srv.set_status("/rss.xml", 503, "down");
    let resp = c.get(srv.url("/rss.xml")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.text().await.unwrap(), "down");

    // Query strings count for the bare path too.
    c.get(srv.url("/rss.xml?ts=1")).send().await.unwrap();
    assert_eq!(srv.hits("/rss.xml"), 6);
    assert_eq!(srv.hits("/rss.xml?ts=1"), 1);

    // wait_for_hits returns once reached, also when woken by a later request.
    srv.wait_for_hits("/rss.xml", 6, T).await;
    let url = srv.url("/rss.xml");
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client().get(url).send().await.unwrap();
    });
    srv.wait_for_hits("/rss.xml", 7, T).await;
    later.await.unwrap();
}

#[tokio::test]
async fn feed_server_serves_raw_bytes_and_atom() {
    let srv = FeedServer::start().await;
    // "舆情" in GBK, not valid UTF-8.
    let gbk: Vec<u8> = vec![0xD3, 0xDF, 0xC7, 0xE9, 0xFF, 0x00];
    srv.set("/gbk", "text/xml; charset=GBK", gbk.clone());
    let resp = client().get(srv.url("/gbk")).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), gbk);

    let no_date = Item::new("urn:x:2", "无日期", "d").with_date(None);
    srv.set(
        "/atom",
        "application/atom+xml",
        atom(
            "Atom & co",
            &[Item::new("urn:x:1", "标题 1", "正文 <1>"), no_date],
        ),
    );
    let bytes = client()
        .get(srv.url("/atom"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let feed = feed_rs::parser::parse(&bytes[..]).unwrap();
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(feed.title.unwrap().content, "Atom & co");
    assert_eq!(feed.entries.len(), 2);
    assert_eq!(feed.entries[0].id, "urn:x:1");
    assert_eq!(
        feed.entries[0].summary.as_ref().unwrap().content,
        "正文 <1>"
    );
    assert_eq!(
        feed.entries[0].links[0].href,
        "https://news.example/urn:x:1"
    );
    assert!(feed.entries[0].published.is_some());
    assert!(feed.entries[1].published.is_none());
}

#[tokio::test]
#[should_panic(expected = "waiting for 1 GET(s) of /never")]
async fn wait_for_hits_panics_on_timeout() {
    let srv = FeedServer::start().await;
    srv.wait_for_hits("/never", 1, Duration::from_millis(100))
        .await;
}

#[tokio::test]
async fn helpers_work() {
    let dir = common::temp_dir();
    assert!(dir.path().is_dir());
    let start = std::time::Instant::now();
    common::eventually("time passes", T, || {
        start.elapsed() > Duration::from_millis(50)
    })
    .await;
}

#[test]
fn truncated_cuts_on_a_char_boundary() {
    // Every cut point of a mixed ASCII/Chinese text, as a feed's dates shift its bytes.
    let text = "pubDate 1 度小满暴力催收";
    for max in 0..=text.len() + 2 {
        let cut = common::truncated(text, max);
        assert!(cut.len() <= max, "{max}: {cut:?}");
        assert!(text.starts_with(cut));
        assert!(
            cut.len() + 4 > max.min(text.len()),
            "{max}: cut more than one char"
        );
    }
    assert_eq!(common::truncated(text, 11), "pubDate 1 ");
    assert_eq!(common::truncated(text, 13), "pubDate 1 度");
}

#[tokio::test]
#[should_panic(expected = "timed out after 100ms waiting for: never true")]
async fn eventually_panics_on_timeout() {
    common::eventually("never true", Duration::from_millis(100), || false).await;
}

#[tokio::test]
async fn fake_telegram_with_real_teloxide() {
    let fake = FakeTelegram::start().await;
    assert!(fake.api_url().starts_with("http://127.0.0.1:"));
    assert!(!fake.api_url().ends_with('/'));
    let bot = bot(&fake);

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.id, UserId(BOT_ID));
    assert_eq!(me.username(), BOT_USERNAME);
    assert!(me.can_read_all_group_messages);
    assert_eq!(fake.method_calls("getMe"), 1);
    assert_eq!(fake.method_calls("GETME"), 1);
    assert_eq!(fake.tokens_seen(), vec!["123:TEST".to_string()]);

    bot.delete_webhook().await.expect("deleteWebhook");
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert!(info.url.is_none());

    let msg = bot
        .send_message(ChatId(-1001), "hello <b>")
        .parse_mode(teloxide::types::ParseMode::Html)
        .await
        .expect("sendMessage");
    assert_eq!(msg.chat.id, ChatId(-1001));
    assert!(msg.chat.is_supergroup());
    assert_eq!(msg.chat.title(), Some("crisis"));
    assert_eq!(msg.text(), Some("hello <b>"));
    assert_eq!(msg.from.as_ref().unwrap().id, UserId(BOT_ID));
    let sent = fake.wait_for_sent(1, T).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].chat_id, -1001);
    assert_eq!(sent[0].text, "hello <b>");
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(fake.sent_to(-1001).len(), 1);
    assert!(fake.sent_to(5).is_empty());

    // Private chat (positive id) also deserializes.
    let msg = bot.send_message(ChatId(5), "私聊").await.expect("private");
    assert!(msg.chat.is_private());
    let m = fake.wait_for_sent_matching(|m| m.text == "私聊", T).await;
    assert_eq!(m.chat_id, 5);

    // Updates.
    let id = fake.push_text(-1001, 77, "/ack 3");
    assert_eq!(id, 1);
    let updates = bot
        .get_updates()
        .offset(0)
        .timeout(1)
        .await
        .expect("getUpdates");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id.0, 1);
    let UpdateKind::Message(m) = &updates[0].kind else {
        panic!("not a message update: {:?}", updates[0].kind);
    };
    assert_eq!(m.text(), Some("/ack 3"));
    assert_eq!(m.from.as_ref().unwrap().id, UserId(77));
    assert_eq!(m.from.as_ref().unwrap().username.as_deref(), Some("user77"));
    assert_eq!(m.chat.id, ChatId(-1001));
    assert!(m.chat.is_supergroup());

    // Not confirmed yet: still returned without offset.
    assert_eq!(bot.get_updates().await.unwrap().len(), 1);

    // Confirm: offset = last + 1 returns nothing (after <= 1 s of long poll).
    let started = std::time::Instant::now();
    let updates = bot
        .get_updates()
        .offset(id as i32 + 1)
        .timeout(30)
        .await
        .unwrap();
    assert!(updates.is_empty());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(fake.pending_updates(), 0);

    // Long poll is woken by a push.
    let fake2 = std::sync::Arc::new(fake);
    let pusher = {
        let fake = fake2.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            fake.push_text(-1001, 78, "收到")
        })
    };
    let updates = bot
        .get_updates()
        .offset(id as i32 + 1)
        .timeout(1)
        .await
        .unwrap();
    let id2 = pusher.await.unwrap();
    assert_eq!(id2, 2);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id.0, 2);
    assert_eq!(fake2.method_calls("getupdates"), 4);

    // Fast, non-5xx injected failure (teloxide sleeps 10 s on 5xx).
    fake2.set_fail_send_status(400);
    fake2.set_fail_send(true);
    let err = bot.send_message(ChatId(-1001), "lost").await;
    assert!(err.is_err(), "expected Err, got {err:?}");
    fake2.set_fail_send_status(429);
    let err = bot.send_message(ChatId(-1001), "lost").await;
    assert!(
        matches!(err, Err(teloxide::RequestError::RetryAfter(_))),
        "{err:?}"
    );
    fake2.set_fail_send(false);
    assert_eq!(fake2.sent().len(), 2, "failed sends are not recorded");
    assert_eq!(fake2.method_calls("sendMessage"), 4);
}

#[tokio::test]
async fn fake_telegram_fail_send_502() {
    let fake = FakeTelegram::start().await;
    let bot = bot(&fake);
    fake.set_fail_send(true);

    // Raw wire check (fast).
    let resp = client()
        .post(format!("{}/bot1:X/sendMessage", fake.api_url()))
        .json(&serde_json::json!({"chat_id": -1001, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);

    // teloxide waits 10 s on a 5xx before returning the error.
    let err = tokio::time::timeout(
        Duration::from_secs(15),
        bot.send_message(ChatId(-1001), "x"),
    )
    .await
    .expect("teloxide returned within 15 s");
    assert!(err.is_err(), "expected Err, got {err:?}");
    assert!(fake.sent().is_empty());

    fake.set_fail_send(false);
    bot.send_message(ChatId(-1001), "ok").await.unwrap();
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn fake_telegram_accepts_form_and_multipart() {
    let fake = FakeTelegram::start().await;
    let c = client();

    let resp: serde_json::Value = c
        .post(format!("{}/bot9:F/sendMessage", fake.api_url()))
        .form(&[
            ("chat_id", "-42"),
            ("text", "表单 & more"),
            ("parse_mode", "HTML"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["ok"], true);
    assert_eq!(resp["result"]["chat"]["id"], -42);

    let form = reqwest::multipart::Form::new()
        .text("chat_id", "-43")
        .text("text", "multi\r\nline");
    let resp = c
        .post(format!("{}/bot9:F/SendMessage", fake.api_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let sent = fake.wait_for_sent(2, T).await;
    assert_eq!(sent[0].chat_id, -42);
    assert_eq!(sent[0].text, "表单 & more");
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(sent[1].chat_id, -43);
    assert_eq!(sent[1].text, "multi\r\nline");
    assert_eq!(fake.tokens_seen(), vec!["9:F".to_string()]);

    // Unknown methods answer true; bad paths 404 without crashing.
    let resp: serde_json::Value = c
        .post(format!("{}/bot9:F/setMyCommands", fake.api_url()))
        .body("not json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp, serde_json::json!({"ok": true, "result": true}));
    let resp = c
        .get(format!("{}/nope", fake.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn teloxide_polling_listener_receives_pushed_updates() {
    let fake = FakeTelegram::start().await;
    let bot = bot(&fake);
    fake.push_text(-1001, 7, "/status");
    let mut polling = Polling::builder(bot)
        .timeout(Duration::from_secs(1))
        .delete_webhook()
        .await
        .build();
    let stream = polling.as_stream();
    futures_util::pin_mut!(stream);
    let upd = tokio::time::timeout(T, stream.next())
        .await
        .expect("update within timeout")
        .expect("stream item")
        .expect("no error");
    let UpdateKind::Message(m) = upd.kind else {
        panic!("not a message");
    };
    assert_eq!(m.text(), Some("/status"));
    // teloxide only calls deleteWebhook when getWebhookInfo reports a URL.
    assert_eq!(fake.method_calls("getWebhookInfo"), 1);
    assert_eq!(fake.method_calls("deleteWebhook"), 0);
}
