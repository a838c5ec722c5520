//! Pages over an SMTP relay: one kept connection, reopened when the relay hangs up.

use crate::paging::Paging;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn pages_reuse_one_relay_connection_and_survive_the_relay_hanging_up() {
    let paging = Paging::start("").await;
    paging.p1("db-01").await;
    paging.tocsin.tick().await;
    paging.p1("db-02").await;
    paging.tocsin.tick().await;
    assert_eq!(paging.smtp.to("alice@example.com").len(), 2);
    assert_eq!(
        paging.smtp.connections.load(Ordering::SeqCst),
        1,
        "the second page goes over the first page's connection"
    );
    // The relay drops its idle clients: the next page finds the kept connection dead
    // (its NOOP fails) and goes over a new one, once.
    paging.smtp.hang_up_all();
    paging.p1("db-03").await;
    paging.tocsin.tick().await;
    let pages = paging.smtp.to("alice@example.com");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(paging.smtp.connections.load(Ordering::SeqCst), 2);
}
