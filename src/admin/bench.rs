//! `yuqing bench-api`: fills a store on disk with synthetic hits, serves the API from it on
//! loopback, and times the two queries a console page load depends on and the daily digest,
//! over real HTTP, and the negative-volume chart (drawn in process, as the notifier will).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{Duration as ChronoDuration, Utc};
use serde::Serialize;

use crate::incident::Incidents;
use crate::store::{Hit, Store};

#[derive(Debug, Serialize)]
pub struct Latency {
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub hits: u64,
    pub fill_s: f64,
    pub hits_last_24h_first_page: Latency,
    pub daily_30_days: Latency,
    /// `GET /api/v1/digest` for yesterday, all brands.
    pub digest_yesterday: Latency,
    /// [`crate::chart::negative_volume_png`] for one brand, up to now.
    pub chart_png: Latency,
}

const BRANDS: [&str; 3] = ["度小满", "招联", "微众"];

/// Fills `dir` with `hits` hits spread over the last 30 days (one in ten negative), then times
/// `requests` calls of each query.
pub async fn run(dir: &std::path::Path, hits: u64, requests: usize) -> Result<Report> {
    let store = Store::open(dir)?;
    let now = Utc::now();
    let started = Instant::now();
    let existing = store.hit_count() as u64;
    for i in existing..hits {
        let at = now - ChronoDuration::milliseconds((i * 30 * 86_400_000 / hits.max(1)) as i64);
        let negative = i % 10 == 0;
        let hit = Hit {
            brand: BRANDS[(i % 3) as usize].to_string(),
            source: format!("source-{}", i % 20),
            url: Some(format!("https://news.example/{i}")),
            title: format!("帖子 {i}"),
            snippet: "度小满有钱花暴力催收，太恶心了".into(),
            at,
            fetched_at: at,
            score: if negative { -2.0 } else { 0.5 },
            negative,
            terms: vec!["暴力催收".into()],
            severity: if negative { 2.0 } else { 0.0 },
            crisis: vec![],
            amplification: 0,
            reposted_by: vec![],
        };
        store.record_post(&[format!("g:{i}")], &[hit], at)?;
    }
    store.flush().await?;
    let fill_s = started.elapsed().as_secs_f64();

    let chart_store = store.clone();
    let state = super::AdminState {
        incidents: Incidents::new(store.clone(), vec![], 3),
        store,
        auth: super::auth::Auth::with_token(&super::auth::random_hex(16), true),
        brands: Arc::new(BRANDS.iter().map(|b| b.to_string()).collect()),
        sources: Arc::new(vec![]),
        public_url: String::new(),
        readiness: Default::default(),
        metrics: crate::metrics::Metrics::new(),
        default_lang: super::i18n::Lang::Zh,
        clock: Arc::new(Utc::now),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, shutdown) = crate::shutdown::channel();
    let server = tokio::spawn(super::serve(listener, state, shutdown));
    let client = reqwest::Client::builder().no_proxy().build()?;
    let hits_url = format!("{base}/api/v1/hits?since=24h&limit=100");
    let daily_url = format!(
        "{base}/api/v1/brands/{}/daily?days=30",
        super::client::encode(BRANDS[0])
    );
    let hits_latency = time(&client, &hits_url, requests).await?;
    let daily_latency = time(&client, &daily_url, requests).await?;
    let digest_latency = time(
        &client,
        &format!("{base}/api/v1/digest?day=yesterday"),
        requests,
    )
    .await?;
    let mut took = Vec::with_capacity(requests);
    for _ in 0..requests.max(1) {
        let started = Instant::now();
        let png = crate::chart::negative_volume_png(&chart_store, BRANDS[0], Utc::now(), None)?;
        anyhow::ensure!(!png.is_empty(), "an empty chart");
        took.push(started.elapsed());
    }
    let chart_latency = latency(took);
    stop.trigger();
    server.await.context("the bench server panicked")??;
    Ok(Report {
        hits,
        fill_s,
        hits_last_24h_first_page: hits_latency,
        daily_30_days: daily_latency,
        digest_yesterday: digest_latency,
        chart_png: chart_latency,
    })
}

async fn time(client: &reqwest::Client, url: &str, requests: usize) -> Result<Latency> {
    let mut took: Vec<Duration> = Vec::with_capacity(requests);
    for _ in 0..requests.max(1) {
        let started = Instant::now();
        let response = client.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await?;
        took.push(started.elapsed());
    }
    Ok(latency(took))
}

fn latency(mut took: Vec<Duration>) -> Latency {
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
    Latency {
        requests: took.len(),
        p50_ms: ms(at(0.50)),
        p99_ms: ms(at(0.99)),
        max_ms: ms(*took.last().expect("at least one request")),
    }
}
