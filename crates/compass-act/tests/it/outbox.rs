//! The durable retry queue against a real HTTP endpoint (wiremock on loopback): nothing
//! is lost while the endpoint is down, slow or failing, and everything arrives in order
//! once it is back.

use std::time::Duration;

use compass_act::outbox::Outbox;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn dead_url() -> String {
    // a port that was free a moment ago: nothing listens on it
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/events")
}

#[tokio::test]
async fn a_dead_endpoint_loses_nothing_and_a_live_one_gets_all_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path()).unwrap();
    for i in 0..3 {
        ob.enqueue(json!({"line": format!("event {i}")})).unwrap();
    }
    let client = reqwest::Client::new();
    let d = ob
        .deliver(&client, &dead_url(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((d.sent, d.remaining), (0, 3));
    assert!(d.error.is_some());
    let p = ob.pending().unwrap();
    assert_eq!(p[0].attempts, 1);
    assert!(p[0].last_error.is_some());
    assert_eq!(p[1].attempts, 0, "delivery stops at the first failure");

    // the process restarts; the endpoint comes back
    drop(ob);
    let ob = Outbox::open(dir.path()).unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/events"))
        .respond_with(ResponseTemplate::new(202))
        .expect(3)
        .mount(&server)
        .await;
    let url = format!("{}/events", server.uri());
    let d = ob
        .drain(
            &client,
            &url,
            Duration::from_secs(10),
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!((d.sent, d.remaining), (3, 0));
    assert!(ob.pending().unwrap().is_empty());
    let got: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["line"].to_string())
        .collect();
    assert_eq!(got, ["\"event 0\"", "\"event 1\"", "\"event 2\""]);
}

#[tokio::test]
async fn a_failing_or_slow_endpoint_keeps_the_message_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path()).unwrap();
    ob.enqueue(json!({"line": "x"})).unwrap();
    let server = MockServer::start().await;
    Mock::given(path("/500"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let client = reqwest::Client::new();
    let d = ob
        .deliver(
            &client,
            &format!("{}/500", server.uri()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(d.error.unwrap().contains("503"));
    let d = ob
        .deliver(
            &client,
            &format!("{}/slow", server.uri()),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    assert!(d.error.unwrap().contains("did not answer within"));
    let p = ob.pending().unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].attempts, 2);
}
