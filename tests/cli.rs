//! The `yuqing` binary as a user runs it: check, score, and run in console mode with a real
//! SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::feeds::{rss, FeedServer, Item};

fn yuqing() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_yuqing"));
    cmd.env_remove("YUQING_CONFIG")
        .env_remove("YUQING_TELEGRAM_TOKEN")
        .env("RUST_LOG", "info");
    cmd
}

#[test]
fn check_prints_a_summary_of_the_shipped_config() {
    let out = yuqing()
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/sources.toml"),
            "check",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("度小满"), "{stdout}");
    assert!(stdout.contains("alerts go to the console"), "{stdout}");
}

#[test]
fn check_names_file_line_and_key_of_a_broken_config() {
    let dir = common::temp_dir();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[[brands]]\nname = \"度小满\"\n\n[[sources]]\nname = \"x\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"soon\"\n").unwrap();
    let out = yuqing()
        .arg("--config")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:8: sources[0].interval", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("invalid duration"), "{stderr}");
}

#[test]
fn check_lists_every_problem_of_a_file_in_one_run() {
    let dir = common::temp_dir();
    let path = dir.path().join("three.toml");
    // A misspelt key, a bad duration and a negative weight: three problems of three kinds.
    std::fs::write(
        &path,
        "[daemon]\nuser_agnet = \"x\"\n\n[[brands]]\nname = \"度小满\"\n\n[[sources]]\nname = \"a\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"soon\"\nweight = -1.0\n",
    )
    .unwrap();
    let out = yuqing()
        .arg("--config")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(stderr.contains("3 problems in"), "{stderr}");
    for located in [
        format!("{file}:2: daemon.user_agnet"),
        format!("{file}:11: sources[0].interval"),
        format!("{file}:12: sources[0].weight"),
    ] {
        assert!(
            stderr.contains(&located),
            "{located} missing from:\n{stderr}"
        );
    }
}

#[test]
fn a_config_without_sources_is_checked_with_a_warning_but_not_run() {
    let dir = common::temp_dir();
    let path = dir.path().join("nothing.toml");
    std::fs::write(&path, "[[brands]]\nname = \"度小满\"\n").unwrap();

    let out = yuqing()
        .arg("--config")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("warning: {}:1: sources:", path.display())),
        "{stdout}"
    );

    let out = yuqing()
        .arg("--config")
        .arg(&path)
        .arg("run")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing to watch"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "refused before opening the store"
    );
}

#[test]
fn an_explicit_config_that_does_not_exist_is_an_error() {
    let out = yuqing()
        .args(["--config", "/nonexistent/yuqing.toml", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/yuqing.toml"));
}

#[test]
fn score_prints_one_json_object_per_line() {
    let mut child = yuqing()
        .args(["score"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("度小满有钱花暴力催收，太恶心了\n\n欢度小满，天气太差\n服务很好\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3, "blank lines are skipped");
    assert_eq!(lines[0]["brands"], serde_json::json!(["度小满"]));
    assert_eq!(lines[0]["negative"], true);
    assert!(lines[0]["score"].as_f64().unwrap() < 0.0);
    assert!(lines[0]["terms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "暴力催收"));
    assert_eq!(
        lines[1]["brands"],
        serde_json::json!([]),
        "the solar term is not the brand"
    );
    assert_eq!(lines[0]["brand_hit"], true);
    assert!(
        lines[0].get("tone").is_none(),
        "a brand hit has no separate tone"
    );
    // No brand named: no brand hit, however gloomy; the gloom is the general tone.
    assert_eq!(lines[1]["brand_hit"], false, "{}", lines[1]);
    assert_eq!(lines[1]["negative"], false, "{}", lines[1]);
    assert_eq!(lines[1]["tone"]["negative"], true, "{}", lines[1]);
    assert!(
        lines[1]["tone"]["terms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "太差"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2]["brand_hit"], false);
    assert_eq!(lines[2]["negative"], false);
    assert_eq!(lines[2]["tone"]["negative"], false, "{}", lines[2]);

    let out = yuqing()
        .args(["score", "--brand", "招联", "招联比度小满差", "度小满很好"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["negative"], true, "{}", lines[0]);
    assert_eq!(lines[1]["brands"], serde_json::json!([]), "{}", lines[1]);
    assert_eq!(lines[1]["score"], 0.0);
    assert_eq!(
        lines[1]["brand_hit"], false,
        "the brand asked about is not in it"
    );
    assert_eq!(lines[1]["tone"]["negative"], false, "{}", lines[1]);

    // --explain: the clauses judged and each term's part, adding up to the score.
    let out = yuqing()
        .args(["score", "--explain", "度小满有钱花暴力催收，太恶心了"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let explanation = &line["explanation"];
    assert!(
        !explanation["clauses"].as_array().unwrap().is_empty(),
        "{line}"
    );
    let parts = explanation["contributions"].as_array().unwrap();
    let sum: f64 = parts.iter().map(|c| c["value"].as_f64().unwrap()).sum();
    assert!(
        (sum - line["score"].as_f64().unwrap()).abs() < 0.01,
        "{sum} vs {line}"
    );
    assert!(
        parts
            .iter()
            .any(|c| c["term"] == "暴力催收" && c["clause"].is_number()),
        "{line}"
    );
    assert!(
        parts.iter().any(|c| c["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "learned weight")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_alerts_to_the_console_and_stops_cleanly_on_sigterm() {
    let feeds = FeedServer::start().await;
    // Four different complaints: copies of one would be one post with reposts.
    let items: Vec<Item> = [
        "度小满有钱花暴力催收，骚扰家人，太恶心了",
        "有钱花利息太高，砍头息，就是高利贷",
        "度小满客服态度极差，投诉无门",
        "度小满的有钱花乱收费，隐形费用坑人",
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| Item::new(&format!("n{i}"), "有钱花暴力催收", text))
    .collect();
    feeds.set("/feed", "application/rss+xml", rss("f", &items));
    let dir = common::temp_dir();
    let config = dir.path().join("sources.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[detection]\nmin_negative = 3\n\n[[brands]]\nname = \"度小满\"\naliases = [\"有钱花\"]\n\n[[sources]]\nname = \"f\"\nkind = \"feed\"\nurl = \"{}\"\ninterval = \"300ms\"\n",
            feeds.url("/feed")
        ),
    )
    .unwrap();
    let mut child = yuqing()
        .arg("--config")
        .arg(&config)
        .arg("run")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The alert appears on stdout.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("yuqing incident #1"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no console alert; stdout so far: {seen:?}");
            }
        }
    }

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    assert!(stderr.contains("store flushed"), "{stderr}");
    // Piped, so plain text: no colour codes for the journal.
    assert!(
        !stderr.contains('\x1b'),
        "escape codes in piped logs: {stderr:?}"
    );
    // The start and the first round of polls are announced.
    assert!(
        stderr.contains("yuqing running: 1 sources, 1 brands, data in /"),
        "{stderr}"
    );
    assert!(stderr.contains("first round of polls done"), "{stderr}");
    // The alert itself went to stdout only, once.
    assert!(!stderr.contains("yuqing incident #1"), "{stderr}");
    let mut stdout_rest = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout_rest.push_str(&seen.join("\n"));
    assert_eq!(
        stdout_rest.matches("yuqing incident #1 ").count(),
        1,
        "{stdout_rest}"
    );
}

/// Lines a child writes to `stream`, as they come.
fn line_channel(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

#[test]
fn no_reachable_source_is_said_plainly_once_in_json_logs() {
    // Bind a port, then free it: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = common::temp_dir();
    let config = dir.path().join("sources.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[brands]]\nname = \"度小满\"\n\n[[sources]]\nname = \"gone\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:{port}/feed\"\ninterval = \"200ms\"\n"
        ),
    )
    .unwrap();
    let mut child = yuqing()
        .args(["--log-format", "json", "--color", "always", "--config"])
        .arg(&config)
        .arg("run")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let rx = line_channel(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    // Wait for the warning and then for two more failed polls, to see it is not repeated.
    let mut failures_after = None;
    while failures_after.is_none_or(|n: usize| n < 2) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!("no 'could be reached' line; stderr so far: {lines:#?}");
        };
        if line.contains("sources could be reached") {
            failures_after = Some(0);
        } else if line.contains("poll failed") {
            failures_after = failures_after.map(|n| n + 1);
        }
        lines.push(line);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    lines.extend(rx.iter());
    assert!(status.success(), "{lines:#?}");
    for line in &lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["level"].is_string(), "{line}");
        assert!(
            !line.contains('\x1b'),
            "JSON logs never carry colour: {line}"
        );
    }
    let warning: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("could be reached"))
        .collect();
    assert_eq!(warning.len(), 1, "said once: {lines:#?}");
    assert!(warning[0].contains("HTTPS_PROXY"), "{}", warning[0]);
    assert!(warning[0].contains("\"level\":\"ERROR\""), "{}", warning[0]);
    let failed = lines.iter().find(|l| l.contains("poll failed")).unwrap();
    let url = format!("127.0.0.1:{port}/feed");
    assert_eq!(failed.matches(&url).count(), 1, "URL once: {failed}");
}

/// A tiny labeled set in the finance set's shape: whether a row is negative depends on the
/// domain word 展期 (a loan extension), which the hand lexicons do not know.
/// The columns of `write_fixture`'s file (and of export-feedback's), judged about the entity.
const BRAND_COLUMNS: [&str; 8] = [
    "--text-col",
    "text",
    "--label-col",
    "label",
    "--negative-value",
    "1",
    "--entity-col",
    "entity",
];

fn write_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let mut csv = String::from("id,entity,label,text\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "a{i},星辰贷,1,\"平台{i}号公告：星辰贷展期，投资人排队\"\n"
        ));
        csv.push_str(&format!(
            "b{i},星辰贷,0,\"平台{i}号公告：星辰贷上线新功能，投资人排队\"\n"
        ));
    }
    csv.push_str("broken,星辰贷,,no label here\n");
    let path = dir.join("labeled.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// `yuqing score` of `texts` about 星辰贷, with the weights in `lexicons` (a config written into
/// that folder points `analysis.lexicon_dir` at it).
fn score_with_lexicons(lexicons: &std::path::Path, texts: &[&str]) -> Vec<serde_json::Value> {
    let config = lexicons.join("sources.toml");
    std::fs::write(
        &config,
        format!(
            "[analysis]\nlexicon_dir = \"{}\"\n\n[[brands]]\nname = \"星辰贷\"\n",
            lexicons.display()
        ),
    )
    .unwrap();
    let out = yuqing()
        .arg("--config")
        .arg(&config)
        .arg("score")
        .args(texts)
        .output()
        .unwrap();
    json_lines(&out.stdout)
}

/// Every stdout line parsed as JSON (`yuqing score` prints one object per line).
fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn last_json(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(text.lines().last().expect("some output")).expect("last line is JSON")
}

#[test]
fn eval_reports_metrics_and_counts_malformed_rows() {
    let dir = common::temp_dir();
    let data = write_fixture(dir.path());
    let out = yuqing()
        .arg("eval")
        .arg(&data)
        .args(BRAND_COLUMNS)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = last_json(&out.stdout);
    assert_eq!(report["n"], 60);
    assert_eq!(report["malformed"], 1);
    for key in [
        "accuracy",
        "neg_precision",
        "neg_recall",
        "neg_f1",
        "docs_per_s",
    ] {
        assert!(report[key].is_number(), "{key} in {report}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("row 62: empty label"));

    let out = yuqing()
        .arg("eval")
        .arg(&data)
        .args([
            "--text-col",
            "body",
            "--label-col",
            "label",
            "--negative-value",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column \"body\""));
}

#[test]
fn learn_writes_weights_that_the_scorer_then_uses() {
    let dir = common::temp_dir();
    let data = write_fixture(dir.path());
    let lexicons = dir.path().join("lexicons");
    std::fs::create_dir(&lexicons).unwrap();
    let args = BRAND_COLUMNS;
    let out = yuqing()
        .arg("learn")
        .arg(&data)
        .args(args)
        .args(["--cv", "3", "--out"])
        .arg(lexicons.join("learned.tsv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last_json(&out.stdout)["folds"], 3);
    let weights = std::fs::read_to_string(lexicons.join("learned.tsv")).unwrap();
    assert!(
        weights.starts_with("# Learned weights"),
        "{}",
        &weights[..200]
    );
    assert!(
        weights.contains("command: yuqing learn labeled.csv"),
        "the header records the command"
    );

    // A config pointing at that folder scores with the new weights.
    let lines = score_with_lexicons(
        &lexicons,
        &["星辰贷展期了，投资人排队", "星辰贷上线新功能，投资人排队"],
    );
    assert_eq!(lines[0]["negative"], true, "{}", lines[0]);
    assert_eq!(lines[1]["negative"], false, "{}", lines[1]);
}

/// Issue 15: the general model is learned from several sets at once, cross-validation reports
/// each set, and the file, dropped into `lexicon_dir`, judges texts that name no brand.
#[test]
fn learn_from_several_files_reports_each_and_writes_the_general_model() {
    let dir = common::temp_dir();
    // Food reviews where 发霉 marks the negatives, and flight posts where 延误 does; neither
    // is a lexicon word (label 0 = negative, as in the general sets).
    let mut food = String::from("label,review\n");
    let mut flights = String::from("label,review\n");
    for i in 0..24 {
        food.push_str(&format!("0,第{i}份外卖，发霉\n1,第{i}份外卖，新鲜\n"));
        flights.push_str(&format!("0,第{i}次航班，延误\n1,第{i}次航班，准点\n"));
    }
    std::fs::write(dir.path().join("food.csv"), food).unwrap();
    std::fs::write(dir.path().join("flights.csv"), flights).unwrap();
    let lexicons = dir.path().join("lexicons");
    std::fs::create_dir(&lexicons).unwrap();
    let out = yuqing()
        .current_dir(dir.path())
        .args([
            "learn",
            "food.csv",
            "flights.csv",
            "--text-col",
            "review",
            "--label-col",
            "label",
            "--negative-value",
            "0",
            "--cv",
            "3",
            "--out",
            "lexicons/general.tsv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = last_json(&out.stdout);
    assert_eq!(report["n"], 96, "{report}");
    for set in ["food.csv", "flights.csv"] {
        assert_eq!(report["by_set"][set]["n"], 48, "{report}");
        assert!(
            report["by_set"][set]["accuracy"].as_f64().unwrap() > 0.9,
            "{report}"
        );
    }
    let weights = std::fs::read_to_string(lexicons.join("general.tsv")).unwrap();
    assert!(
        weights.contains("command: yuqing learn food.csv flights.csv --text-col review"),
        "the header records the command: {}",
        &weights[..400]
    );
    assert!(weights.contains("__targeted__\t0\n"), "a whole-text model");

    let config = dir.path().join("sources.toml");
    let brands = "[[brands]]\nname = \"星辰贷\"\n";
    std::fs::write(
        &config,
        format!(
            "[analysis]\nlexicon_dir = \"{}\"\n\n{brands}",
            lexicons.display()
        ),
    )
    .unwrap();
    let texts = ["昨天的外卖又发霉", "今天的航班准点"];
    let out = yuqing()
        .arg("--config")
        .arg(&config)
        .arg("score")
        .args(texts)
        .output()
        .unwrap();
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["tone"]["negative"], true, "{}", lines[0]);
    assert_eq!(lines[1]["tone"]["negative"], false, "{}", lines[1]);
    // `analysis.general = false` turns it off: the rules alone do not know 发霉 from this set.
    std::fs::write(
        &config,
        format!(
            "[analysis]\nlexicon_dir = \"{}\"\ngeneral = false\n\n{brands}",
            lexicons.display()
        ),
    )
    .unwrap();
    let out = yuqing()
        .arg("--config")
        .arg(&config)
        .args(["score", "--explain", texts[0]])
        .output()
        .unwrap();
    let line = last_json(&out.stdout);
    assert!(
        !line["tone"]["explanation"]["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["term"] == "(baseline)"),
        "no model took part: {line}"
    );
}

#[test]
fn export_feedback_on_an_empty_database_writes_a_header() {
    let dir = common::temp_dir();
    let out_csv = dir.path().join("fb.csv");
    let out = yuqing()
        .args(["export-feedback", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--out")
        .arg(&out_csv)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&out_csv).unwrap(),
        "id,entity,label,text\n"
    );
}

/// Issue 15, the feedback loop: staff verdicts that a brand's posts were false positives,
/// exported by `yuqing export-feedback`, retrain the brand model so that those posts are no
/// longer flagged, while the real complaints still are.
#[test]
fn learn_with_feedback_stops_flagging_the_false_positives_staff_marked() {
    let dir = common::temp_dir();
    let data = write_fixture(dir.path());
    let columns = BRAND_COLUMNS;
    // The shape `yuqing export-feedback` writes: label 0 = not negative about the entity.
    let mut verdicts = String::from("id,entity,label,text\n");
    for i in 0..6 {
        verdicts.push_str(&format!(
            "fb{i},星辰贷,0,\"星辰贷展期优惠活动第{i}期开始，投资人排队抽奖\"\n"
        ));
    }
    let feedback = dir.path().join("feedback.csv");
    std::fs::write(&feedback, verdicts).unwrap();
    let false_positive = "星辰贷展期优惠活动开始，投资人排队抽奖";
    let complaint = "星辰贷展期了，投资人排队";

    let judge = |with_feedback: bool| -> Vec<serde_json::Value> {
        let lexicons = dir
            .path()
            .join(if with_feedback { "with" } else { "without" });
        std::fs::create_dir_all(&lexicons).unwrap();
        let mut learn = yuqing();
        learn.arg("learn").arg(&data).args(columns);
        if with_feedback {
            learn.arg("--feedback").arg(&feedback);
        }
        let out = learn
            .arg("--out")
            .arg(lexicons.join("learned.tsv"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        if with_feedback {
            assert!(stderr.contains("6 staff verdicts"), "{stderr}");
            let weights = std::fs::read_to_string(lexicons.join("learned.tsv")).unwrap();
            assert!(
                weights.contains("--feedback feedback.csv"),
                "the header records the verdicts it learned from"
            );
        }
        score_with_lexicons(&lexicons, &[false_positive, complaint])
    };
    let before = judge(false);
    assert_eq!(before[0]["negative"], true, "flagged before: {}", before[0]);
    let after = judge(true);
    assert_eq!(after[0]["negative"], false, "not after: {}", after[0]);
    assert_eq!(
        after[1]["negative"], true,
        "the complaint still is: {}",
        after[1]
    );
}

#[test]
fn learn_feedback_errors_name_the_problem() {
    let dir = common::temp_dir();
    let data = write_fixture(dir.path());
    let feedback = dir.path().join("feedback.csv");
    // No --entity-col: verdicts are about a brand.
    std::fs::write(&feedback, "id,entity,label,text\nfb1,星辰贷,0,星辰贷活动\n").unwrap();
    let out = yuqing()
        .arg("learn")
        .arg(&data)
        .args([
            "--text-col",
            "text",
            "--label-col",
            "label",
            "--negative-value",
            "1",
        ])
        .arg("--feedback")
        .arg(&feedback)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--entity-col"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A file that is not export-feedback's CSV.
    std::fs::write(
        &feedback,
        "id,brand,verdict,text\nfb1,星辰贷,0,星辰贷活动\n",
    )
    .unwrap();
    let out = yuqing()
        .arg("learn")
        .arg(&data)
        .args(BRAND_COLUMNS)
        .arg("--feedback")
        .arg(&feedback)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("feedback.csv") && stderr.contains("no column \"label\""),
        "{stderr}"
    );
}

/// Issue 15: `kill -HUP` reloads the learned weights from `analysis.lexicon_dir`; a broken file
/// is refused with an error naming it, and the daemon keeps running on the weights it had.
#[cfg(unix)]
#[test]
fn sighup_reloads_learned_weights_and_refuses_a_broken_file() {
    use std::io::BufRead;
    use std::time::Duration;

    let dir = common::temp_dir();
    let lexicons = dir.path().join("lexicons");
    std::fs::create_dir(&lexicons).unwrap();
    let weights = lexicons.join("learned.tsv");
    std::fs::write(&weights, "__targeted__\t1\n__bias__\t0.5\n展期\t2.0\n").unwrap();
    let config = dir.path().join("sources.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
             [analysis]\nlexicon_dir = \"{}\"\n\n[[brands]]\nname = \"星辰贷\"\n\n\
             [[sources]]\nname = \"closed\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:9/feed\"\ninterval = \"1h\"\n",
            dir.path().join("data").display(),
            lexicons.display()
        ),
    )
    .unwrap();
    let mut child = yuqing()
        .args(["--color", "never", "--config"])
        .arg(&config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Reads log lines until one matches; the timeout only guards against a hung daemon.
    let wait_for = |what: &str| -> String {
        loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line containing {what:?}: {e}"),
            }
        }
    };
    let hangup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    wait_for("yuqing running");

    std::fs::write(&weights, "__targeted__\t1\n__bias__\t0.5\n展期\tlots\n").unwrap();
    hangup();
    let refused = wait_for("reload refused");
    assert!(refused.contains("learned.tsv"), "names the file: {refused}");
    assert!(refused.contains("ERROR"), "{refused}");

    std::fs::write(
        &weights,
        "__targeted__\t1\n__bias__\t0.5\n展期\t2.0\n逾期\t1.5\n排队\t0.5\n",
    )
    .unwrap();
    hangup();
    let reloaded = wait_for("reloaded the lexicons and learned weights");
    assert!(reloaded.contains("3 brand weights"), "{reloaded}");

    // Still running after both: it stops cleanly on SIGTERM.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}
