use super::files::{metric_name, split_level};
use super::*;
use compass_core::LogLevel;

#[test]
fn pods_map_to_services_by_dropping_two_parts() {
    assert_eq!(
        service_of_pod("ts-contacts-service-866bd68c97-xcqfx"),
        "ts-contacts-service"
    );
    assert_eq!(service_of_pod("frontend-579b9bff58-t2dbm"), "frontend");
    assert_eq!(service_of_pod("solo"), "solo");
}

#[test]
fn headers_become_metric_names_with_units() {
    assert_eq!(metric_name("CpuUsageRate(%)"), "cpu_usage_rate_percent");
    assert_eq!(
        metric_name("PodServerLatencyP95(s)"),
        "pod_server_latency_p95_seconds"
    );
    assert_eq!(metric_name("CpuUsage(m)"), "cpu_usage_millicores");
    assert_eq!(metric_name("MemoryUsage(Mi)"), "memory_usage_mebibytes");
    assert_eq!(metric_name("NetworkReceiveBytes"), "network_receive_bytes");
    assert_eq!(metric_name("PodWorkload(Ops)"), "pod_workload_ops");
}

#[test]
fn minute_files_are_keyed_by_the_minute_they_end() {
    let key = minute_key("2023-01-29", "08_43_log.csv", "log").unwrap();
    assert_eq!(key, 1_674_981_780_000); // 2023-01-29T08:43:00Z
    assert_eq!(minute_key("2023-01-29", "08_43_trace.csv", "log"), None);
    assert_eq!(minute_key("2023-01-29", "25_00_log.csv", "log"), None);
    assert_eq!(minute_key("2023-01-29", "notes.csv", "log"), None);
}

#[test]
fn log_levels_come_from_the_leading_words() {
    let (level, msg) = split_level("16:42:22.382 ERROR  t.s.Impl#5 [find][No contacts]\n");
    assert_eq!(level, LogLevel::Error);
    assert_eq!(msg, "t.s.Impl#5 [find][No contacts]");
    let (level, msg) = split_level("2023-01-29 10:00:00.1 WARN x happened");
    assert_eq!((level, msg), (LogLevel::Warn, "x happened"));
    let (level, msg) = split_level("plain text without a level");
    assert_eq!((level, msg), (LogLevel::Info, "plain text without a level"));
}
