//! The dashboard in a real headless Chromium driven through chromedriver's WebDriver
//! API: a new P1 appears without a reload. Skipped (with a message) where Debian's
//! `chromium` and `chromium-driver` are missing; `.ci/run` installs them.

use crate::harness::{Harness, generic};
use crate::webdriver::Driver;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_new_p1_appears_on_the_dashboard_within_two_seconds_without_a_reload() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let tocsin = Harness::start("").await;
    let browser = driver.browser().await;
    browser.open(&format!("{}/", tocsin.url)).await;
    browser
        .wait_for(
            "return document.body.getAttribute('data-live') === 'connected'",
            Duration::from_secs(10),
            "the live stream never connected",
        )
        .await;
    assert!(browser.text().await.contains("Nothing open"));
    // Marks the page so a reload would be noticed.
    browser
        .script("window.notReloaded = true; return true")
        .await;

    tocsin
        .ingest_ok("generic", &generic("db-primary", "replication", "critical"))
        .await;
    let posted = Instant::now();
    browser
        .wait_for(
            "return document.body.innerText.includes('replication on db-primary')",
            Duration::from_secs(2),
            "the P1 did not appear",
        )
        .await;
    assert!(posted.elapsed() < Duration::from_secs(2));
    assert_eq!(
        browser.script("return window.notReloaded === true").await,
        true,
        "no reload happened"
    );
    assert_eq!(
        browser
            .script("return document.querySelector('.badge.P1') !== null")
            .await,
        true
    );
    assert_eq!(
        browser
            .script("return document.querySelector('a[href=\"/ui/incidents/1\"]') !== null")
            .await,
        true,
        "the incident links to its console page"
    );
    browser.screenshot("dashboard.png").await;
    browser.close().await;
}
