//! `compass serve` as real processes with real neighbours, all on loopback:
//! a real Alertmanager posting to the webhook; two replicas sharing a real PostgreSQL
//! queue, one killed mid-run (every job finishes exactly once); and the web UI driven
//! in headless Chromium (a screenshot, and a click on confirm that changes the stored
//! decision); and one trace per investigation exported over OTLP/HTTP to a receiver
//! in the test. A missing server binary fails the test with the install command.

use compass_adapters::store::SqlStore;
use compass_engine::store::Store;
use compass_testkit::{Alertmanager, ChromeDriver, Postgres, free_port, http_status};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::serve_common::bundle;

/// A `compass serve` child process, killed on drop.
struct Replica {
    port: u16,
    child: Child,
}

impl Replica {
    fn start(database: &str, extra: &[&str], env: &[(&str, &str)]) -> Replica {
        let port = free_port();
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("compass-serve-{port}.log")))
                .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_compass"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                database,
                "--bundle",
            ])
            .arg(bundle())
            .args(extra)
            .envs(env.iter().copied())
            .env("COMPASS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut r = Replica { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_status(port, "/readyz") != Some(200) {
            if let Ok(Some(s)) = r.child.try_wait() {
                panic!("compass serve exited with {s}; log: {}", r.log());
            }
            assert!(
                Instant::now() < deadline,
                "compass serve not ready; log: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(
            std::env::temp_dir().join(format!("compass-serve-{}.log", self.port)),
        )
        .unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as systemd or Kubernetes stop it, and wait for the graceful exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

fn create_token(database: &str, name: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_compass"))
        .args([
            "token",
            "create",
            "--name",
            name,
            "--role",
            role,
            "--database",
            database,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Value {
    let res = client.get(url).bearer_auth(token).send().await.unwrap();
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.json().await.unwrap()
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_alerts_open_one_incident_and_investigation_and_resolve_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let config = dir.path().join("compass.toml");
    std::fs::write(
        &config,
        "version = 1\n[serve]\nwebhook_secret_env = \"COMPASS_WEBHOOK_SECRET\"\nworkers = 1\n",
    )
    .unwrap();
    let token = create_token(&db, "ops", "viewer");
    let compass = Replica::start(
        &db,
        &["--config", config.to_str().unwrap()],
        &[("COMPASS_WEBHOOK_SECRET", "am-secret")],
    );
    let am = Alertmanager::start(
        &compass.url("/api/v1/webhooks/alertmanager"),
        Some("am-secret"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let alert = |pod: &str, ends: Option<&str>| {
        let mut a = json!({"labels": {"alertname": "CheckoutLatencyHigh", "service": "frontend", "pod": pod, "severity": "critical"},
                           "annotations": {"summary": "checkout p99 over 2 s"}});
        if let Some(e) = ends {
            a["endsAt"] = json!(e);
        }
        a
    };
    // Two alerts of one group, sent twice: one incident, one investigation.
    let firing = json!([alert("frontend-1", None), alert("frontend-2", None)]).to_string();
    am.post_alerts(&firing).unwrap();
    am.post_alerts(&firing).unwrap();
    let client = reqwest::Client::new();
    let incidents_url = compass.url("/api/v1/incidents");
    wait_until(
        "the incident with both alerts",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            let (url, token) = (incidents_url.clone(), token.clone());
            async move {
                let v = get(&client, &url, &token).await;
                v.as_array()
                    .unwrap()
                    .first()
                    .is_some_and(|i| i["alert_count"] == 2)
            }
        },
    )
    .await;
    let incidents = get(&client, &incidents_url, &token).await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(incidents[0]["incident"]["title"], "checkout p99 over 2 s");
    let id = incidents[0]["id"].as_str().unwrap();
    let view = get(
        &client,
        &compass.url(&format!("/api/v1/incidents/{id}")),
        &token,
    )
    .await;
    assert_eq!(
        view["investigations"].as_array().unwrap().len(),
        1,
        "{view}"
    );
    // Resolving both closes it.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    am.post_alerts(
        &json!([
            alert("frontend-1", Some(&past)),
            alert("frontend-2", Some(&past))
        ])
        .to_string(),
    )
    .unwrap();
    let one = compass.url(&format!("/api/v1/incidents/{id}"));
    wait_until("the incident to resolve", Duration::from_secs(60), || {
        let (client, url, token) = (client.clone(), one.clone(), token.clone());
        async move { get(&client, &url, &token).await["state"] == "resolved" }
    })
    .await;
    let metrics = client
        .get(compass.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "compass_webhook_alerts_total{receiver=\"alertmanager\",outcome=\"opened\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_queue_and_a_killed_one_loses_nothing() {
    let pg = Postgres::start().unwrap_or_else(|e| panic!("{e}"));
    let db = pg.create_database("replicas").unwrap();
    let token = create_token(&db, "ops", "responder");
    let args = ["--workers", "2", "--lease", "3"];
    let a = Replica::start(&db, &args, &[]);
    let mut b = Replica::start(&db, &args, &[]);
    let client = reqwest::Client::new();
    let truth = compass_adapters::bundle::BundleSource::open(&bundle())
        .unwrap()
        .incident()
        .clone();
    let start = chrono::DateTime::from_timestamp_millis(truth.start)
        .unwrap()
        .to_rfc3339();
    let mut ids = Vec::new();
    for i in 0..50 {
        let res = client
            .post(a.url("/api/v1/incidents"))
            .bearer_auth(&token)
            .json(&json!({"title": format!("{} #{i}", truth.title), "severity": "critical", "services": truth.affected_services, "start": start}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        ids.push(
            res.json::<Value>().await.unwrap()["investigation_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let store = SqlStore::connect(&db, 4).await.unwrap();
    // Kill b while it holds a lease, once both have finished some jobs.
    let b_pid = format!("-{}/", b.child.id());
    wait_until(
        "replica b to hold a lease",
        Duration::from_secs(120),
        || {
            let (store, b_pid) = (store.clone(), b_pid.clone());
            async move {
                let recs = store.investigations(None, 100).await.unwrap();
                recs.iter().filter(|r| r.state.is_final()).count() >= 4
                    && recs.iter().any(|r| {
                        r.state.as_str() == "running"
                            && r.lease_owner.as_deref().is_some_and(|o| o.contains(&b_pid))
                    })
            }
        },
    )
    .await;
    b.kill();
    wait_until(
        "all 50 investigations to finish",
        Duration::from_secs(600),
        || {
            let store = store.clone();
            async move {
                store
                    .investigations(None, 100)
                    .await
                    .unwrap()
                    .iter()
                    .all(|r| r.state.is_final())
            }
        },
    )
    .await;
    let recs = store.investigations(None, 100).await.unwrap();
    assert_eq!(recs.len(), 50);
    for id in &ids {
        let rec = recs.iter().find(|r| &r.id == id).unwrap();
        assert!(
            ["completed", "degraded"].contains(&rec.state.as_str()),
            "{id}: {:?} {:?}",
            rec.state,
            rec.error
        );
        let finished = store
            .progress(id, 0)
            .await
            .unwrap()
            .iter()
            .filter(|p| p.kind == "finished")
            .count();
        assert_eq!(finished, 1, "{id} finished {finished} times");
        assert!(
            store.result(id).await.unwrap().is_some(),
            "{id} has its result"
        );
    }
    assert!(
        recs.iter().any(|r| r.attempts > 1),
        "the killed replica's job was taken over"
    );
    let metrics = client
        .get(a.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("compass_lease_takeovers_total"),
        "{metrics}"
    );
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_the_investigation_and_confirm_changes_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let token = create_token(&db, "alice", "responder");
    let compass = Replica::start(&db, &[], &[]);
    let client = reqwest::Client::new();
    let truth = compass_adapters::bundle::BundleSource::open(&bundle())
        .unwrap()
        .incident()
        .clone();
    let start = chrono::DateTime::from_timestamp_millis(truth.start)
        .unwrap()
        .to_rfc3339();
    let created: Value = client
        .post(compass.url("/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({"title": truth.title, "severity": "critical", "services": truth.affected_services, "start": start}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["investigation_id"].as_str().unwrap().to_string();
    let status_url = compass.url(&format!("/api/v1/investigations/{id}"));
    wait_until(
        "the investigation to finish",
        Duration::from_secs(120),
        || {
            let (client, url, token) = (client.clone(), status_url.clone(), token.clone());
            async move {
                get(&client, &url, &token).await["state"]
                    .as_str()
                    .is_some_and(|s| s != "queued" && s != "running")
            }
        },
    )
    .await;
    let driver = ChromeDriver::start().unwrap_or_else(|e| panic!("{e}"));
    let caps = json!({"goog:chromeOptions": {"binary": compass_testkit::chromium_binary().unwrap(), "args": compass_testkit::CHROME_ARGS}});
    let browser = fantoccini::ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&driver.webdriver_url())
        .await
        .unwrap();
    // Sign in with the token, then open the investigation.
    browser.goto(&compass.url("/ui/login")).await.unwrap();
    let field = browser
        .find(fantoccini::Locator::Css("input[name=token]"))
        .await
        .unwrap();
    field.send_keys(&token).await.unwrap();
    browser
        .find(fantoccini::Locator::Css("form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(fantoccini::Locator::Css("table.list"))
        .await
        .unwrap();
    browser
        .goto(&compass.url(&format!("/ui/investigations/{id}")))
        .await
        .unwrap();
    let confirm = browser
        .wait()
        .for_element(fantoccini::Locator::Css(".decide button.confirm"))
        .await
        .unwrap();
    let hypothesis = confirm.attr("data-hypothesis").await.unwrap().unwrap();
    let shot = browser.screenshot().await.unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-investigation.png");
    std::fs::write(&out, &shot).unwrap();
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "a real screenshot at {}",
        out.display()
    );
    confirm.click().await.unwrap();
    browser
        .wait()
        .for_element(fantoccini::Locator::Css(".decide[data-verdict=confirmed]"))
        .await
        .unwrap();
    browser.close().await.unwrap();
    let decisions = get(
        &client,
        &compass.url(&format!("/api/v1/investigations/{id}/decisions")),
        &token,
    )
    .await;
    assert_eq!(decisions[0]["hypothesis_id"], hypothesis.as_str());
    assert_eq!(decisions[0]["confirmed"], true);
    assert_eq!(decisions[0]["actor"], "alice");
}

/// What an OTLP/HTTP receiver got: one decoded export request per POST.
type Exports = std::sync::Arc<
    std::sync::Mutex<
        Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
    >,
>;

/// A minimal OTLP/HTTP traces receiver on a loopback port (no collector is packaged
/// for Debian): it decodes each protobuf body with the OTLP schema.
async fn otlp_receiver() -> (u16, Exports) {
    use prost::Message;
    let exports: Exports = Default::default();
    let sink = exports.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let req = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body)
                    .expect("the exporter sends OTLP protobuf");
                sink.lock().unwrap().push(req);
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, exports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_investigation_is_one_trace_over_otlp_and_the_logs_carry_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let (otlp_port, exports) = otlp_receiver().await;
    let endpoint = format!("http://127.0.0.1:{otlp_port}");
    let mut compass = Replica::start(
        &db,
        &["--no-auth"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_SERVICE_NAME", "compass-test"),
            ("COMPASS_LOG_FORMAT", "json"),
        ],
    );
    let client = reqwest::Client::new();
    let start = compass_adapters::bundle::BundleSource::open(&bundle())
        .unwrap()
        .incident()
        .start;
    let created: Value = client
        .post(compass.url("/api/v1/incidents"))
        .json(&json!({"title": "traced", "start": chrono::DateTime::from_timestamp_millis(start).unwrap().to_rfc3339()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inv = created["investigation_id"].as_str().unwrap().to_string();
    let result_url = compass.url(&format!("/api/v1/investigations/{inv}/result"));
    wait_until("the investigation", Duration::from_secs(120), || async {
        client.get(&result_url).send().await.unwrap().status() == 200
    })
    .await;
    let result: Value = client
        .get(&result_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trace_id = result["trace_id"].as_str().unwrap().to_string();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    // A graceful stop flushes the batch exporter.
    assert!(compass.terminate().success(), "log: {}", compass.log());

    let exports = exports.lock().unwrap();
    let spans: Vec<_> = exports
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter(|rs| {
            rs.resource.as_ref().is_some_and(|r| {
                r.attributes.iter().any(|kv| {
                    kv.key == "service.name" && format!("{:?}", kv.value).contains("compass-test")
                })
            })
        })
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .filter(|s| hex::encode(&s.trace_id) == trace_id)
        .collect();
    let named = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let root = named("investigation");
    assert_eq!(
        root.len(),
        1,
        "one root span; got {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert!(
        root[0].parent_span_id.is_empty(),
        "the investigation is the trace's root"
    );
    let agents = named("agent");
    assert!(agents.len() >= 3, "agent spans: {}", agents.len());
    assert!(
        agents.iter().all(|a| a.parent_span_id == root[0].span_id),
        "agents are children of the investigation"
    );
    let calls = named("source.call");
    assert!(
        !calls.is_empty(),
        "data-source calls are spans of the trace"
    );
    assert!(
        calls
            .iter()
            .all(|c| c.attributes.iter().any(|kv| kv.key == "op")),
        "each call names its operation"
    );

    // The JSON log line that ends the investigation names the same trace.
    let log = compass.log();
    let finished = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "investigation finished")
        .unwrap_or_else(|| panic!("no finished line in {log}"));
    assert_eq!(
        finished["span"]["trace_id"],
        trace_id.as_str(),
        "{finished}"
    );
    assert_eq!(
        finished["span"]["investigation"],
        inv.as_str(),
        "{finished}"
    );
}
