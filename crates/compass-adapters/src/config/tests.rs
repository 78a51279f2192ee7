//! Config parsing and validation: each mistake gets a message naming where and what.

use super::*;

fn parse(text: &str) -> Result<Settings, ConfigError> {
    Settings::parse(text, "compass.toml", None)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const PROM: &str = "version = 1\n[sources.prom]\nkind = \"prometheus\"\nurl = \"http://p:9090\"\n";

#[test]
fn the_full_example_validates_into_settings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/config");
    let text = std::fs::read_to_string(dir.join("full.toml")).unwrap();
    let with_env = text.replace(
        "bearer_token_env = \"COMPASS_TEST_PROM_TOKEN\"",
        "bearer_token = \"t0ken\"",
    );
    let s = Settings::parse(&with_env, "full.toml", Some(&dir)).unwrap();
    assert_eq!(s.sources.len(), 3);
    assert_eq!(s.catalog.status_label, "http_response_status_code");
    assert_eq!(s.catalog.db_connections_usage, "pg_stat_activity_count");
    assert_eq!(s.alert_service_labels, ["service", "job", "app"]);
    let prom = s.sources.iter().find(|x| x.name == "prom").unwrap();
    let http = prom.http.as_ref().unwrap();
    assert_eq!(http.timeout, Duration::from_secs(5));
    assert_eq!(http.retry.max_retries, 3);
    assert_eq!(prom.scope, [("namespace".to_string(), "shop".to_string())]);
    assert_eq!(
        http.tls.ca_file.as_deref(),
        Some(dir.join("ca.pem").as_path())
    );
    let loki = s.sources.iter().find(|x| x.name == "loki").unwrap();
    match &loki.http.as_ref().unwrap().auth {
        Auth::Basic { username, password } => {
            assert_eq!(username, "compass");
            assert_eq!(secrecy::ExposeSecret::expose_secret(password), "s3cret");
        }
        other => panic!("expected basic auth, got {other:?}"),
    }
    // Secrets never print.
    assert!(!format!("{s:?}").contains("s3cret"));
    assert!(!format!("{s:?}").contains("t0ken"));
}

#[test]
fn the_deliberately_wrong_example_names_the_source_and_field() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/config/wrong.toml");
    let e = Settings::load(&path).unwrap_err().to_string();
    assert!(e.contains("wrong.toml"), "{e}");
    assert!(e.contains("[sources.logs]"), "{e}");
    assert!(
        e.contains("`max_series` does not apply to a loki source"),
        "{e}"
    );
}

#[test]
fn an_unknown_field_is_named_with_its_line() {
    let e = error(&format!("{PROM}urll = \"x\"\n"));
    assert!(e.contains("unknown field `urll`"), "{e}");
    assert!(e.contains("line 5"), "{e}");
}

#[test]
fn the_version_is_required_and_checked() {
    assert!(error("[services]\n").contains("missing field `version`"));
    assert!(error("version = 2\n").contains("this build reads version = 1"));
}

#[test]
fn two_sources_of_one_kind_of_data_are_refused() {
    let e = error(&format!(
        "{PROM}[sources.vm]\nkind = \"prometheus\"\nurl = \"http://vm:8428\"\n"
    ));
    assert!(e.contains("both serve metrics"), "{e}");
}

#[test]
fn bad_urls_timeouts_and_kinds_say_what_is_right() {
    let e = error("version = 1\n[sources.p]\nkind = \"prometheus\"\nurl = \"p:9090\"\n");
    assert!(e.contains("http://"), "{e}");
    let e = error("version = 1\n[sources.p]\nkind = \"prometheus\"\n");
    assert!(e.contains("needs `url`"), "{e}");
    let e = error(&format!("{PROM}timeout = \"ten seconds\"\n"));
    assert!(e.contains("\"10s\""), "{e}");
    let e = error("version = 1\n[sources.p]\nkind = \"graphite\"\nurl = \"http://g\"\n");
    assert!(e.contains("unknown variant `graphite`"), "{e}");
    assert!(e.contains("prometheus"), "{e}");
}

#[test]
fn secrets_must_come_from_exactly_one_place() {
    let e = error(&format!(
        "{PROM}auth = {{ bearer_token = \"a\", bearer_token_env = \"B\" }}\n"
    ));
    assert!(e.contains("only one of bearer_token"), "{e}");
    let e = error(&format!(
        "{PROM}auth = {{ bearer_token_env = \"COMPASS_SURELY_UNSET_VARIABLE\" }}\n"
    ));
    assert!(e.contains("COMPASS_SURELY_UNSET_VARIABLE"), "{e}");
    assert!(e.contains("not set"), "{e}");
    let e = error(&format!("{PROM}auth = {{ username = \"u\" }}\n"));
    assert!(e.contains("without a password"), "{e}");
}

#[test]
fn mappings_override_presets_and_unknown_mapping_fields_are_refused() {
    let s = parse(&format!(
        "{PROM}[metrics]\npresets = [\"opentelemetry\"]\n[metrics.mapping]\nerror_status = \"5..|429\"\n"
    ))
    .unwrap();
    assert_eq!(s.catalog.error_status, "5..|429");
    assert_eq!(s.catalog.status_label, "http_response_status_code");
    let e = error(&format!("{PROM}[metrics.mapping]\nrequest_total = \"x\"\n"));
    assert!(e.contains("request_total"), "{e}");
    let e = error(&format!("{PROM}[metrics]\npresets = [\"datadog\"]\n"));
    assert!(e.contains("known presets: compass"), "{e}");
    let e = error(&format!("{PROM}[services]\nlabel = \"9lives\"\n"));
    assert!(e.contains("not a valid label name"), "{e}");
}

#[test]
fn log_files_need_paths_and_take_no_http_fields() {
    let e = error("version = 1\n[sources.f]\nkind = \"log_files\"\n");
    assert!(e.contains("needs `paths`"), "{e}");
    let e = error(
        "version = 1\n[sources.f]\nkind = \"log_files\"\npaths = [\"a.log\"]\nurl = \"http://x\"\n",
    );
    assert!(
        e.contains("`url` does not apply to a log_files source"),
        "{e}"
    );
}

#[test]
fn the_service_label_reaches_the_catalog_and_the_alert_labels() {
    let s = parse(&format!("{PROM}[services]\nlabel = \"app\"\n")).unwrap();
    assert_eq!(s.catalog.service_label, "app");
    assert_eq!(s.alert_service_labels, ["app", "service", "job"]);
}
