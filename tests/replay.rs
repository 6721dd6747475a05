//! Exporting a live run and replaying it reproduces the same incidents.

mod common;

use common::daemon::TestDaemon;
use yuqing::store::Store;

fn yuqing(args: &[&str], config: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_yuqing"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("YUQING_CONFIG")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_live_run_replays_to_the_same_incidents() {
    let d = TestDaemon::start().await;
    d.burst_until_incident().await;
    d.polls(2).await;
    let config_path = d.config_path.clone();
    let (_feeds, data) = d.stop().await;
    let live = {
        let store = Store::open(&data.path().join("db")).unwrap();
        let incidents = store.incidents().unwrap();
        assert_eq!(incidents.len(), 1);
        incidents[0].clone()
    };

    let posts = data.path().join("posts.ndjson");
    let out = tokio::task::spawn_blocking({
        let (config_path, posts) = (config_path.clone(), posts.clone());
        move || {
            yuqing(
                &["export", "--since", "7d", "--out", posts.to_str().unwrap()],
                &config_path,
            )
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = std::fs::read_to_string(&posts).unwrap();
    // calm-1 and the four complaints mention the brand; the solar term does not, so it is
    // not kept.
    assert_eq!(exported.lines().count(), 5, "{exported}");
    let first: serde_json::Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    for key in ["source", "title", "text", "url", "published"] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }

    let out = tokio::task::spawn_blocking(move || {
        yuqing(&["replay", posts.to_str().unwrap()], &config_path)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let opened: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "opened").collect();
    assert_eq!(opened.len(), 1, "{events:#?}");
    assert_eq!(opened[0]["brand"], live.brand);
    assert_eq!(opened[0]["incident"], live.id);
    assert_eq!(opened[0]["window_count"], live.window_count, "{events:#?}");
    assert_eq!(opened[0]["because"], live.opened_because);
}

#[test]
fn replay_names_a_malformed_line_and_refuses_other_speeds() {
    let dir = common::temp_dir();
    let posts = dir.path().join("bad.ndjson");
    std::fs::write(&posts, "{\"source\":\"a\"}\n").unwrap();
    let config = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/sources.toml"));
    let out = yuqing(&["replay", posts.to_str().unwrap()], config);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.ndjson:1"), "{err}");
    let out = yuqing(
        &["replay", "--speed", "2x", posts.to_str().unwrap()],
        config,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("only `max`"));
}
