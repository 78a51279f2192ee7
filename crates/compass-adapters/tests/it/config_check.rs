//! `check_sources` (`compass config check`) against scripted backends: a Loki that
//! answers and names its services, a Loki whose streams lack the service label, and a
//! Tempo that is down. The real-Prometheus side is tested in the binary's tests.

use compass_adapters::config::{Settings, check_sources};
use compass_core::TimeRange;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/loki");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

async fn loki(label_values: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/loki/api/v1/status/buildinfo"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("buildinfo.json")))
        .mount(&server)
        .await;
    Mock::given(path("/ready"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ready\n"))
        .mount(&server)
        .await;
    Mock::given(path("/loki/api/v1/label/service/values"))
        .respond_with(ResponseTemplate::new(200).set_body_string(label_values.to_string()))
        .mount(&server)
        .await;
    server
}

const RANGE: TimeRange = TimeRange {
    start: 1_000_000,
    end: 4_600_000,
};

#[tokio::test]
async fn loki_is_pinged_and_its_service_label_checked_and_a_dead_tempo_is_named() {
    let good = loki(&fixture("label_values.json")).await;
    let dead_port = compass_testkit::free_port();
    let text = format!(
        "version = 1\n[sources.logs]\nkind = \"loki\"\nurl = \"{}\"\n\
         [sources.traces]\nkind = \"tempo\"\nurl = \"http://127.0.0.1:{dead_port}\"\nretries = 0\n",
        good.uri()
    );
    let settings = Settings::parse(&text, "compass.toml", None).unwrap();
    let checks = check_sources(&settings, RANGE).await;
    let logs = checks.iter().find(|c| c.name == "logs").unwrap();
    assert!(logs.passed(), "{logs:?}");
    assert!(
        logs.reachable.as_ref().unwrap().contains("ready"),
        "{logs:?}"
    );
    assert!(
        logs.findings[0].1.contains("service label `service`"),
        "{logs:?}"
    );
    let traces = checks.iter().find(|c| c.name == "traces").unwrap();
    assert!(!traces.passed());
    let why = traces.reachable.as_ref().unwrap_err();
    assert!(why.contains(&format!("127.0.0.1:{dead_port}")), "{why}");
}

#[tokio::test]
async fn loki_streams_without_the_service_label_fail_the_check() {
    let empty = loki(r#"{"status":"success","data":[]}"#).await;
    let text = format!(
        "version = 1\n[services]\nlabel = \"service\"\n[sources.logs]\nkind = \"loki\"\nurl = \"{}\"\n",
        empty.uri()
    );
    let settings = Settings::parse(&text, "compass.toml", None).unwrap();
    let checks = check_sources(&settings, RANGE).await;
    assert!(!checks[0].passed());
    assert!(
        checks[0].findings[0]
            .1
            .contains("no log streams carry the service label `service`"),
        "{:?}",
        checks[0]
    );
}
