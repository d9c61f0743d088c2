//! The status page as the data centre sees it: `blockhub up` with its
//! embedded broker, the sample county loaded, the page opened in headless
//! Chromium; every figure on it equals SyncHealth.Get's, and a screenshot
//! is kept in target/test-artifacts/ for people to look at.
//!
//! Needs Chromium (Debian's `chromium`, which .ci/run installs) at
//! BLOCKHUB_CHROMIUM, on PATH or at /usr/bin/chromium; without it the test
//! fails and says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use blockhub::StoreArgs;
use blockhub::config::DataDir;
use blockhub_gateway::proto::sync_health_client::SyncHealthClient;
use blockhub_gateway::proto::{FeedStatus, HealthReport, HealthRequest};
use blockhub_merger::MergerConfig;
use blockhub_model::PersonKeyer;
use blockhub_tests::{TestHub, ingest_sample_county_keyed, wait_caught_up};

fn chromium() -> PathBuf {
    let named = std::env::var_os("BLOCKHUB_CHROMIUM").map(PathBuf::from);
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.exists())
    });
    let found = named
        .or(on_path)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists()));
    found.expect(
        "Chromium is needed for the status page test: install Debian's chromium package \
         (.ci/run does) or set BLOCKHUB_CHROMIUM",
    )
}

/// Runs headless Chromium on `url` with `args`, returning its stdout.
async fn headless(url: &str, args: &[String], profile: &Path) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished within two minutes")
    .expect("chromium started");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of `name="..."` within the tag that starts `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let tag = &tag[..tag.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].replace("&amp;", "&"))
}

/// Every element carrying `data-{key}`, by the attribute's value, with
/// the tag's text for reading the other attributes.
fn tagged<'a>(dom: &'a str, key: &str) -> BTreeMap<String, &'a str> {
    let marker = format!(" data-{key}=\"");
    let mut found = BTreeMap::new();
    let mut rest = dom;
    while let Some(at) = rest.find(&marker) {
        let tag_start = rest[..at].rfind('<').unwrap_or(0);
        let tag = &rest[tag_start..];
        if let Some(value) = attribute(tag, &format!("data-{key}")) {
            found.insert(value, tag);
        }
        rest = &rest[at + marker.len()..];
    }
    found
}

/// What the page shows, as (source → figures), (kind → open alerts),
/// dead letters listed, and events in the chart.
type Shown = (
    BTreeMap<String, Vec<String>>,
    BTreeMap<String, String>,
    usize,
    i64,
);

fn shown_on_page(dom: &str) -> Shown {
    let figures = [
        "status",
        "events-total",
        "rejected-total",
        "events-24h",
        "rejected-24h",
    ];
    let sources = tagged(dom, "source")
        .into_iter()
        .map(|(source, tag)| {
            let values = figures
                .iter()
                .chain(["waiting"].iter())
                .map(|name| attribute(tag, &format!("data-{name}")).unwrap_or_default())
                .collect();
            (source, values)
        })
        .collect();
    let alerts = tagged(dom, "alert-kind")
        .into_iter()
        .map(|(kind, tag)| (kind, attribute(tag, "data-open").unwrap_or_default()))
        .collect();
    let dead_letters = dom.matches(" data-dead-letter=\"").count();
    let chart: i64 = dom
        .split(" data-events=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse::<i64>().ok())
        .sum();
    (sources, alerts, dead_letters, chart)
}

fn shown_by_api(report: &HealthReport) -> Shown {
    let label = |status: FeedStatus| match status {
        FeedStatus::Ok => "OK",
        FeedStatus::Late => "LATE",
        FeedStatus::Stalled => "STALLED",
        FeedStatus::Failing => "FAILING",
        FeedStatus::Unspecified => "?",
    };
    let sources = report
        .sources
        .iter()
        .map(|s| {
            let values = vec![
                label(s.status()).to_string(),
                s.events_total.to_string(),
                s.rejected_total.to_string(),
                s.events_24h.to_string(),
                s.rejected_24h.to_string(),
                s.waiting.to_string(),
            ];
            (s.source.clone(), values)
        })
        .collect();
    let alerts = report
        .open_alerts
        .iter()
        .map(|(kind, count)| (kind.clone(), count.to_string()))
        .collect();
    let chart = report.hours.iter().map(|h| h.events).sum();
    (sources, alerts, report.recent_dead_letters.len(), chart)
}

/// A run of 15 or more digits: an ID number that escaped masking.
fn has_raw_id(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 15 {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_page_in_chromium_shows_the_same_figures_as_the_api() {
    let hub = TestHub::start().await;
    let (data, hub_file) = (hub.data.clone(), hub.hub.clone());
    let page = hub_file
        .status
        .clone()
        .expect("the hub file names the status page");

    let settings = hub.settings();
    let keyer = PersonKeyer::new(&data.key_secret().unwrap()).unwrap();
    ingest_sample_county_keyed(&settings, keyer).await;
    wait_caught_up(
        &MergerConfig::new(settings.clone()),
        &blockhub_store(&data).await,
    )
    .await;

    let (gateway, token) = hub.client();
    let channel = blockhub::commands::lookup::connect(&gateway).await.unwrap();
    let get = || {
        let (channel, token) = (channel.clone(), token.clone());
        async move {
            let request =
                blockhub::commands::lookup::authorised(HealthRequest::default(), token.as_deref())
                    .unwrap();
            SyncHealthClient::new(channel)
                .get(request)
                .await
                .expect("SyncHealth.Get")
                .into_inner()
        }
    };

    // The hub keeps working (alerts every second): compare once the API
    // gives the same figures before and after the page is read.
    let profile = tempfile::tempdir().unwrap();
    let mut attempts = 0;
    let (dom, api) = loop {
        attempts += 1;
        let before = shown_by_api(&get().await);
        let dom = headless(&page, &["--dump-dom".to_string()], profile.path()).await;
        let after = shown_by_api(&get().await);
        if before == after || attempts == 5 {
            assert_eq!(before, after, "the hub's figures never settled");
            break (dom, after);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let on_page = shown_on_page(&dom);
    assert_eq!(
        on_page, api,
        "the page shows other figures than SyncHealth.Get"
    );

    // The sample county fed every source once: each is shown, with what it
    // holds, and most are on time; nothing is fetched from elsewhere and
    // no ID number shows.
    assert_eq!(api.0.len(), 8, "{:?}", api.0);
    assert!(api.0["staffing.roster"][1].parse::<i64>().unwrap() > 1000);
    assert!(api.3 > 0, "the chart shows the load");
    assert!(!api.1.is_empty(), "open alerts are shown");
    assert!(
        dom.contains("http-equiv=\"refresh\""),
        "the page reloads by itself"
    );
    assert!(!dom.contains("<script") && !dom.contains("src=\"http") && !dom.contains("@import"));
    assert!(
        !dom.contains("href=\"http"),
        "nothing is fetched from elsewhere"
    );
    assert!(!has_raw_id(&dom), "an ID number on the status page");

    // A screenshot for people to look at.
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1600,2000".to_string(),
        ],
        profile.path(),
    )
    .await;
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
    println!("status page screenshot: {}", shot.display());

    let (_dir, code) = hub.stop().await;
    assert_eq!(code, std::process::ExitCode::SUCCESS);
}

async fn blockhub_store(data: &DataDir) -> blockhub_merger::Store {
    let args = StoreArgs { database_url: None };
    blockhub_merger::Store::open(&args.url(data)).await.unwrap()
}
