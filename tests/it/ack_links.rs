//! The acknowledge links of page emails: a GET shows, only the POST acts, forged and
//! expired links change nothing.

use crate::paging::{ALICE_PHONE, Paging, status_of, timeline};
use chrono::TimeDelta;
use std::sync::atomic::Ordering;

/// The acknowledge link of alice's page email.
fn ack_link(paging: &Paging) -> String {
    let mail = paging.smtp.to("alice@example.com")[0].text();
    let start = mail
        .find(&format!("{}/ack/", paging.tocsin.url))
        .expect("an acknowledge link");
    mail[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect()
}

#[tokio::test]
async fn opening_the_email_link_shows_the_incident_and_only_its_button_acknowledges() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    let token = link.rsplit('/').next().unwrap().to_string();
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    let client = &paging.tocsin.client;
    let status = |id: i64| status_of(&paging.tocsin, id);

    // What a mail scanner does: fetch the link, twice.
    for _ in 0..2 {
        let page = client.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store");
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!("#{id} [P1] postgres on db-01")),
            "the page names the incident: {html}"
        );
        assert_eq!(html.matches("<button").count(), 1, "{html}");
        assert!(html.contains("<form method=\"post\">") && !html.contains("<script"));
    }
    assert_eq!(status(id).await, "triggered", "a GET changes nothing");
    assert!(
        !timeline(&paging.tocsin, id)
            .await
            .iter()
            .any(|(kind, _)| kind == "acknowledged")
    );

    let pressed = client.post(&link).send().await.unwrap();
    assert_eq!(pressed.status(), 200);
    assert!(
        pressed
            .text()
            .await
            .unwrap()
            .contains("acknowledged by alice")
    );
    assert_eq!(status(id).await, "acknowledged");
    assert!(timeline(&paging.tocsin, id).await.iter().any(
        |(kind, message)| kind == "acknowledged" && message.contains("alice (email link)")
    ));
    assert_eq!(
        client.post(&link).send().await.unwrap().status(),
        410,
        "a used link acts no more"
    );
    assert_eq!(
        client.get(&link).send().await.unwrap().status(),
        410,
        "and shows no button either"
    );
    assert_eq!(
        paging.sms.to(ALICE_PHONE).len(),
        1,
        "an acknowledgement pages nobody"
    );
}

#[tokio::test]
async fn a_forged_ack_link_is_refused_on_get_and_post_and_changes_nothing() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    let mut forged = link.clone().into_bytes();
    let last = forged.len() - 5;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let client = &paging.tocsin.client;
    for response in [
        client.get(&forged).send().await.unwrap(),
        client.post(&forged).send().await.unwrap(),
        client
            .post(format!("{}/ack/not-a-token", paging.tocsin.url))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 403);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("not one Tocsin issued")
        );
    }
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
    assert_eq!(
        client.post(&link).send().await.unwrap().status(),
        200,
        "the real link still works"
    );
}

#[tokio::test]
async fn an_ack_that_could_not_be_stored_leaves_the_link_usable() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    let client = &paging.tocsin.client;
    paging.tocsin.store.failing.store(true, Ordering::SeqCst);
    let failed = client.post(&link).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    assert!(failed.text().await.unwrap().contains("Nothing was changed"));
    paging.tocsin.store.failing.store(false, Ordering::SeqCst);
    assert_eq!(status_of(&paging.tocsin, id).await, "triggered");
    assert_eq!(
        client.post(&link).send().await.unwrap().status(),
        200,
        "the link is spent in the ack's own commit, not before it"
    );
    assert_eq!(status_of(&paging.tocsin, id).await, "acknowledged");
}

#[tokio::test]
async fn an_expired_link_is_gone() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    paging.tocsin.clock.advance(TimeDelta::hours(25));
    let client = &paging.tocsin.client;
    assert_eq!(client.get(&link).send().await.unwrap().status(), 410);
    assert_eq!(client.post(&link).send().await.unwrap().status(), 410);
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
}
