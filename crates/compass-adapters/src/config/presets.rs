//! Metric-mapping presets for what people actually run. A preset sets some fields of
//! the `MetricCatalog`; presets are applied in the order listed in `compass.toml`,
//! then the file's own overrides. Unknown names are an error that lists the known ones.
//!
//! Service identity is not part of a preset: every mapped metric must carry the label
//! `[services] label` names (`compass config check` verifies it and says which labels a
//! metric has instead). cAdvisor and kube-state-metrics series usually get it from a
//! relabel rule (`pod` → `service`, see docs/configuration.md).

use compass_engine::catalog::MetricCatalog;

/// Every preset name, in documentation order.
pub const PRESETS: [&str; 4] = [
    "compass",
    "opentelemetry",
    "postgres_exporter",
    "mysqld_exporter",
];

/// Apply preset `name` onto `catalog`; `Err` lists the known names.
pub fn apply(name: &str, catalog: &mut MetricCatalog) -> Result<(), String> {
    match name {
        // What compass-sim writes: OpenTelemetry-style names with a status-class label,
        // cAdvisor and kube-state-metrics container metrics, OTel DB pool gauges.
        "compass" => *catalog = MetricCatalog::default(),
        // OpenTelemetry HTTP semantic conventions as exported to Prometheus (histogram
        // `_count` as the request counter, numeric status codes, `server_address` for
        // the callee) and the OTel DB client pool gauges.
        "opentelemetry" => {
            catalog.requests_total = "http_server_request_duration_seconds_count".into();
            catalog.status_label = "http_response_status_code".into();
            catalog.error_status = "5..".into();
            catalog.server_duration = "http_server_request_duration_seconds".into();
            catalog.client_duration = "http_client_request_duration_seconds".into();
            catalog.peer_label = "server_address".into();
            catalog.db_connections_usage = "db_client_connections_usage".into();
            catalog.db_state_label = "state".into();
            catalog.db_used_state = "used".into();
            catalog.db_connections_max = "db_client_connections_max".into();
            catalog.db_connections_pending = "db_client_connections_pending_requests".into();
        }
        // Container metrics: cAdvisor (`container_*`, CPU seconds and working set) and
        // kube-state-metrics (`kube_*`, limits by `resource` and restarts).
        "kubernetes" => {
            catalog.cpu_seconds_total = "container_cpu_usage_seconds_total".into();
            catalog.memory_working_set = "container_memory_working_set_bytes".into();
            catalog.resource_limits = "kube_pod_container_resource_limits".into();
            catalog.resource_label = "resource".into();
            catalog.restarts_total = "kube_pod_container_status_restarts_total".into();
        }
        // postgres_exporter: server-side connections (`pg_stat_activity_count` by
        // state) against `max_connections`.
        "postgres_exporter" => {
            catalog.db_connections_usage = "pg_stat_activity_count".into();
            catalog.db_state_label = "state".into();
            catalog.db_used_state = "active".into();
            catalog.db_connections_max = "pg_settings_max_connections".into();
            // postgres_exporter has no gauge of clients waiting for a connection.
            catalog.db_connections_pending = String::new();
        }
        // mysqld_exporter: connected threads against `max_connections`.
        "mysqld_exporter" => {
            catalog.db_connections_usage = "mysql_global_status_threads_connected".into();
            catalog.db_used_state = String::new();
            catalog.db_connections_max = "mysql_global_variables_max_connections".into();
            catalog.db_connections_pending = String::new();
        }
        other => {
            return Err(format!(
                "unknown metrics preset `{other}`; known presets: {}",
                PRESETS.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_preset_applies_and_unknown_ones_name_the_known() {
        for p in PRESETS {
            let mut c = MetricCatalog::default();
            apply(p, &mut c).unwrap();
        }
        let err = apply("prom", &mut MetricCatalog::default()).unwrap_err();
        assert!(err.contains("opentelemetry"), "{err}");
    }

    #[test]
    fn presets_layer_in_order() {
        let mut c = MetricCatalog::default();
        apply("opentelemetry", &mut c).unwrap();
        apply("mysqld_exporter", &mut c).unwrap();
        assert_eq!(c.status_label, "http_response_status_code");
        assert_eq!(
            c.db_connections_max,
            "mysql_global_variables_max_connections"
        );
        assert!(c.db_used_state.is_empty());
    }
}
