//! Error, exception and lifecycle lines. The wording here is what the investigation
//! agents look for, so keep the stable parts stable:
//!
//! - caller side of a failed call: `call to {callee} failed: {code} {reason} (...)`
//! - pool exhaustion: `... HikariPool-1 - Connection is not available, request timed out after 30000ms.`
//! - memory pressure: `GC overhead {pct}% ... pause {ms}ms ...`; the kill: an
//!   out-of-memory line (`OutOfMemoryError`, `out of memory`), then
//!   `Container restarted: previous instance terminated with OOMKilled (exit code 137) ...`
//! - CPU / slow work: `Slow request: {METHOD} {path} took {ms}ms (threshold {t}ms)`
//! - network delay, caller side: `upstream {callee} slow: ...` and `deadline exceeded calling {callee} ...`
//! - injected errors and bad deploys: language-specific exception templates, different
//!   from the baseline ones, chosen per seed.

use super::{Ctx, camel, w};
use crate::topology::{Flavor, Lang};

/// A benign failure that happens at a low rate all the time.
pub(crate) fn baseline_error(c: &mut Ctx<'_, '_>, m: &mut String) {
    if c.svc().flavor == Flavor::Postgres {
        m.push_str("ERROR:  could not serialize access due to concurrent update");
        return;
    }
    let mut route = String::new();
    c.route(&mut route);
    match c.svc().lang {
        Lang::Java => {
            w!(
                m,
                "Request failed: org.apache.catalina.connector.ClientAbortException: java.io.IOException: Broken pipe ({route})"
            )
        }
        Lang::Go => w!(
            m,
            "request failed: context canceled (client went away) route=\"{route}\""
        ),
        Lang::Node => {
            let id = c.uuid();
            w!(m, "Error: socket hang up (request {id})")
        }
        Lang::Python => w!(
            m,
            "Exception on {route}: ConnectionResetError: [Errno 104] Connection reset by peer"
        ),
    }
}

fn java_frames(c: &Ctx<'_, '_>, m: &mut String, class: &str, lines: (u32, u32)) {
    let pkg = c.svc().domain.replace('-', "");
    w!(
        m,
        "\n\tat com.shop.{pkg}.{class}Service.process({class}Service.java:{})\n\tat com.shop.{pkg}.{class}Controller.handle({class}Controller.java:{})",
        lines.0,
        lines.1
    );
}

/// The exceptions of the error-injection fault (`template` picks the variant).
pub(crate) fn injected_error(c: &mut Ctx<'_, '_>, template: usize, m: &mut String) {
    let mut route = String::new();
    c.route(&mut route);
    let class = c.class();
    let domain = c.svc().domain.clone();
    match (c.svc().lang, template % 3) {
        (Lang::Java, 0) => {
            let id = c.int(10_000, 9_999_999);
            w!(
                m,
                "Unhandled exception in {route}: java.lang.IllegalStateException: {class} {id} is in state EXPIRED, expected ACTIVE"
            );
            java_frames(c, m, &class, (214, 88));
        }
        (Lang::Java, 1) => {
            let id = c.uuid();
            w!(
                m,
                "Request failed: java.lang.NullPointerException: Cannot invoke \"com.shop.model.LineItem.getPrice()\" because \"item\" is null (request_id={id})"
            );
            java_frames(c, m, &class, (131, 88));
        }
        (Lang::Java, _) => {
            let id = c.int(10_000, 9_999_999);
            w!(
                m,
                "Request failed: org.springframework.dao.DataIntegrityViolationException: could not execute statement; constraint [fk_{}_ref]; key ({id})",
                domain.replace('-', "_")
            );
        }
        (Lang::Go, 0) => {
            let len = c.int(0, 8);
            w!(
                m,
                "panic recovered in handler {route}: runtime error: index out of range [{len}] with length {len}"
            );
        }
        (Lang::Go, 1) => {
            let at = c.int(12, 4096);
            w!(
                m,
                "request failed: rpc error: code = Internal desc = decode {domain} payload: unexpected EOF at byte {at}"
            );
        }
        (Lang::Go, _) => {
            let id = c.int(10_000, 9_999_999);
            let (a, b) = (
                c.pick(&["pending", "reserved", "locked"]),
                c.pick(&["cancelled", "expired", "void"]),
            );
            w!(
                m,
                "request failed: {domain} store: invalid state transition \"{a}\" -> \"{b}\" for id {id}"
            );
        }
        (Lang::Node, 0) => {
            let (field, line, col, id) = (
                c.pick(&["amount", "currencyCode", "items", "userId"]),
                40 + template % 200,
                17,
                c.uuid(),
            );
            w!(
                m,
                "TypeError: Cannot read properties of undefined (reading '{field}') at /app/src/handlers/{domain}.js:{line}:{col} (request {id})"
            );
        }
        (Lang::Node, 1) => {
            let pos = c.int(0, 64);
            w!(
                m,
                "UnhandledPromiseRejection: Error: upstream returned malformed JSON: Unexpected token < in JSON at position {pos}"
            );
        }
        (Lang::Node, _) => {
            let (code, id) = (c.pick(&["XXX", "E UR", "usd ", ""]), c.uuid());
            w!(
                m,
                "RangeError: Invalid currency code: '{code}' (request {id})"
            );
        }
        (Lang::Python, 0) => {
            let (field, id) = (
                c.pick(&["currency_code", "user_id", "segment", "sku"]),
                c.uuid(),
            );
            w!(
                m,
                "Exception on {route}: KeyError: '{field}' (request_id={id})"
            );
        }
        (Lang::Python, 1) => {
            let val = c.pick(&["NaN", "12.5.1", "", "None"]);
            w!(
                m,
                "Exception on {route}: ValueError: invalid literal for int() with base 10: '{val}'"
            );
        }
        (Lang::Python, _) => {
            let field = c.pick(&["embedding", "price", "profile"]);
            w!(
                m,
                "Exception on {route}: AttributeError: 'NoneType' object has no attribute '{field}'"
            );
        }
    }
}

/// The exceptions that appear with the bad deploy's new version.
pub(crate) fn deploy_error(c: &mut Ctx<'_, '_>, template: usize, m: &mut String) {
    let mut route = String::new();
    c.route(&mut route);
    let class = c.class();
    let domain = c.svc().domain.clone();
    match (c.svc().lang, template % 2) {
        (Lang::Java, 0) => {
            let pkg = domain.replace('-', "");
            w!(
                m,
                "Request failed: java.lang.ClassCastException: class com.shop.{pkg}.v2.{class}Rule cannot be cast to class com.shop.{pkg}.{class}Rule"
            );
            java_frames(c, m, &class, (57, 102));
        }
        (Lang::Java, _) => {
            w!(
                m,
                "Request failed: java.lang.NoSuchMethodError: 'java.util.Optional com.shop.client.{class}Client.fetch(long, boolean)' ({route})"
            );
        }
        (Lang::Go, 0) => {
            let g = c.int(100, 90_000);
            w!(
                m,
                "panic recovered in handler {route}: assignment to entry in nil map (goroutine {g})"
            );
        }
        (Lang::Go, _) => {
            w!(
                m,
                "request failed: config key \"{domain}.rollout.percentage\" missing, refusing to serve {route}"
            );
        }
        (Lang::Node, 0) => {
            let (line, col) = (c.int(20, 400), c.int(5, 60));
            w!(
                m,
                "TypeError: {}Client.fetchV2 is not a function at /app/dist/handlers/{domain}.js:{line}:{col}",
                camel(&domain)
            );
        }
        (Lang::Node, _) => {
            let id = c.uuid();
            w!(
                m,
                "Error: Cannot find module './serializers/{domain}-v2' (request {id})"
            );
        }
        (Lang::Python, 0) => {
            w!(
                m,
                "Exception on {route}: TypeError: get_{}() got an unexpected keyword argument 'region'",
                domain.replace('-', "_")
            );
        }
        (Lang::Python, _) => {
            w!(
                m,
                "Exception on {route}: ImportError: cannot import name '{class}V2' from 'shop.{}.models'",
                domain.replace('-', "_")
            );
        }
    }
}

/// A request that gave up waiting for a DB connection.
pub(crate) fn pool_timeout(_c: &mut Ctx<'_, '_>, m: &mut String) {
    m.push_str(
        "Request failed: org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC Connection; \
         nested exception is java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, \
         request timed out after 30000ms.",
    );
}

/// Pool statistics while exhausted.
pub(crate) fn pool_exhausted(max: u32, pending: u32, m: &mut String) {
    w!(
        m,
        "HikariPool-1 - Pool stats (total={max}, active={max}, idle=0, waiting={pending})"
    );
}

/// The caller's side of a failed call.
pub(crate) fn call_failed(callee: &str, op: &str, code: u16, ms: f64, m: &mut String) {
    let reason = match code {
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    };
    w!(
        m,
        "call to {callee} failed: {code} {reason} ({op}, {}ms)",
        ms.round()
    );
}

pub(crate) fn slow_request(c: &mut Ctx<'_, '_>, ms: f64, threshold: f64, m: &mut String) {
    let mut route = String::new();
    c.route(&mut route);
    w!(
        m,
        "Slow request: {route} took {}ms (threshold {}ms)",
        ms.round(),
        threshold
    );
}

pub(crate) fn slow_upstream(callee: &str, op: &str, ms: f64, m: &mut String) {
    w!(m, "upstream {callee} slow: {op} took {}ms", ms.round());
}

pub(crate) fn deadline_retry(callee: &str, deadline_ms: f64, m: &mut String) {
    w!(
        m,
        "deadline exceeded calling {callee} after {deadline_ms}ms, retrying (attempt 2/2)"
    );
}

/// Garbage-collector pressure as memory nears the limit; `pause_ms` is the typical
/// stop-the-world pause, in scale with the slowdown the requests see.
pub(crate) fn gc_overhead(
    c: &mut Ctx<'_, '_>,
    used: f64,
    limit: f64,
    pressure: f64,
    pause_ms: f64,
    m: &mut String,
) {
    let pct = (5.0 + 60.0 * pressure).round();
    let pause = (pause_ms * (0.7 + 0.6 * c.int(0, 100) as f64 / 100.0)).round();
    let (used, max) = ((used / 1_048_576.0).round(), (limit / 1_048_576.0).round());
    match c.svc().lang {
        Lang::Java => w!(
            m,
            "GC overhead {pct}% over last 60s: G1 Full GC pause {pause}ms, heap {used}MiB/{max}MiB"
        ),
        Lang::Go => w!(
            m,
            "GC overhead {pct}%: stop-the-world pause {pause}ms, heap_inuse {used}MiB, GOMEMLIMIT {max}MiB"
        ),
        Lang::Node => w!(
            m,
            "GC overhead {pct}%: mark-sweep-compact pause {pause}ms, heap used {used}MiB of {max}MiB"
        ),
        Lang::Python => w!(
            m,
            "GC overhead {pct}%: gen2 collection pause {pause}ms, rss {used}MiB/{max}MiB"
        ),
    }
}

/// The last words of a process killed for memory.
pub(crate) fn out_of_memory(c: &mut Ctx<'_, '_>, m: &mut String) {
    match c.svc().lang {
        Lang::Java => {
            let n = c.int(1, 200);
            w!(
                m,
                "Exception in thread \"http-nio-8080-exec-{n}\" java.lang.OutOfMemoryError: Java heap space"
            )
        }
        Lang::Go => m.push_str("fatal error: runtime: out of memory"),
        Lang::Node => m.push_str(
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        ),
        Lang::Python => {
            let n = c.int(8, 256);
            w!(m, "MemoryError: unable to allocate {n}.0 MiB for an array")
        }
    }
}

pub(crate) fn restarted_after_oom(restarts: u32, m: &mut String) {
    w!(
        m,
        "Container restarted: previous instance terminated with OOMKilled (exit code 137), restart count {restarts}"
    );
}

pub(crate) fn starting(service: &str, version: &str, pod: &str, m: &mut String) {
    w!(m, "Starting {service} {version} on {pod} (pid 1)");
}

pub(crate) fn started(service: &str, secs: f64, m: &mut String) {
    w!(
        m,
        "Started {service} in {secs:.3} seconds, listening on :8080"
    );
}

pub(crate) fn shutting_down(m: &mut String) {
    m.push_str("Received SIGTERM, draining connections (grace period 30s)");
}

pub(crate) fn config_reloaded(description: &str, m: &mut String) {
    w!(m, "Configuration reloaded: {description}");
}
