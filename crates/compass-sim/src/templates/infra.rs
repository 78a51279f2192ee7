//! Lines of the infrastructure (postgres, redis, kafka), of the report batch job, and of
//! the chatty logger's bursts. None of these belong to a request.

use super::Level::{Debug, Info, Warn};
use super::{Template, t, w};

pub(crate) static POSTGRES: &[Template] = &[
    t(Info, 2.0, false, |c, m| {
        let (ms, table) = (
            c.int(200, 900),
            c.pick(&["orders", "order_items", "stock", "reservations"]),
        );
        w!(
            m,
            "duration: {ms}.{:03} ms  statement: SELECT * FROM {table} WHERE id = ANY($1)",
            c.int(0, 999)
        )
    }),
    t(Info, 0.5, false, |_, m| {
        m.push_str("checkpoint starting: time")
    }),
    t(Info, 0.5, false, |c, m| {
        let (n, pct, wr, sy) = (c.int(500, 9000), c.int(1, 9), c.int(10, 270), c.int(0, 9));
        w!(
            m,
            "checkpoint complete: wrote {n} buffers ({pct}.{}%); write={wr}.{:03} s, sync=0.{sy:03} s",
            c.int(0, 9),
            c.int(0, 999)
        )
    }),
    t(Info, 1.0, false, |c, m| {
        let table = c.pick(&["orders", "order_items", "stock", "reservations"]);
        w!(
            m,
            "automatic vacuum of table \"shop.public.{table}\": index scans: 1, pages: 0 removed, {} remain",
            c.int(1000, 90_000)
        )
    }),
    t(Info, 1.5, false, |c, m| {
        let user = c.pick(&["orders", "inventory", "report_batch"]);
        w!(
            m,
            "connection authorized: user={user} database=shop application_name={user}"
        )
    }),
    t(Warn, 0.1, false, |c, m| {
        let n = c.int(2, 6);
        w!(
            m,
            "checkpoints are occurring too frequently ({n} seconds apart)"
        )
    }),
];

pub(crate) static REDIS: &[Template] = &[
    t(Info, 1.0, false, |c, m| {
        let n = c.int(100, 20_000);
        w!(m, "{n} changes in 60 seconds. Saving...")
    }),
    t(Info, 1.0, false, |c, m| {
        let pid = c.int(100, 9000);
        w!(m, "Background saving started by pid {pid}")
    }),
    t(Info, 1.0, false, |_, m| m.push_str("DB saved on disk")),
    t(Info, 0.5, false, |c, m| {
        let mb = c.int(1, 40);
        w!(
            m,
            "Fork CoW for RDB: current {mb} MB, peak {} MB, average {} MB",
            mb + 2,
            mb / 2 + 1
        )
    }),
    t(Info, 0.5, false, |c, m| {
        let (ip, port) = (c.ip(), c.int(30000, 60000));
        w!(m, "Accepted {ip}:{port}")
    }),
    t(Info, 0.4, false, |c, m| {
        let (ip, port) = (c.ip(), c.int(30000, 60000));
        w!(
            m,
            "Client closed connection id={} addr={ip}:{port}",
            c.int(1000, 90_000)
        )
    }),
    t(Info, 0.3, false, |c, m| {
        let secs = c.int(1, 4);
        w!(
            m,
            "Background RDB transfer terminated with success, {secs}.{:03} seconds",
            c.int(0, 999)
        )
    }),
    t(Warn, 0.05, false, |_, m| {
        m.push_str("Asynchronous AOF fsync is taking too long (disk is busy?)")
    }),
];

pub(crate) static KAFKA: &[Template] = &[
    t(Info, 1.5, false, |c, m| {
        let (p, o, ms) = (c.int(0, 12), c.int(1_000_000, 90_000_000), c.int(1, 20));
        w!(
            m,
            "[ProducerStateManager partition=order-events-{p}] Wrote producer snapshot at offset {o} with 0 producer ids in {ms} ms."
        )
    }),
    t(Info, 1.5, false, |c, m| {
        let (p, o, ms) = (c.int(0, 12), c.int(1_000_000, 90_000_000), c.int(1, 20));
        w!(
            m,
            "[LocalLog partition=order-events-{p}, dir=/var/lib/kafka/data] Rolled new log segment at offset {o} in {ms} ms."
        )
    }),
    t(Info, 0.5, false, |c, m| {
        let id = c.uuid();
        w!(
            m,
            "[GroupCoordinator 1]: Member consumer-notification-1-{id} in group notification has joined"
        )
    }),
    t(Info, 0.8, false, |c, m| {
        let n = c.int(1, 6);
        w!(
            m,
            "[Log partition=order-events-{n}, dir=/var/lib/kafka/data] Deleting segment files LogSegment(baseOffset={})",
            c.int(100_000, 9_000_000)
        )
    }),
    t(Warn, 0.1, false, |c, m| {
        let (id, ms) = (c.int(1, 3), c.int(1000, 4000));
        w!(
            m,
            "[ReplicaFetcher replicaId={id}, leaderId=0, fetcherId=0] Fetch took {ms} ms"
        )
    }),
];

/// Report-batch between runs.
pub(crate) static BATCH_IDLE: &[Template] = &[
    t(Debug, 2.0, false, |c, m| {
        let min = c.int(1, 20);
        w!(
            m,
            "scheduler idle, next run of report daily_sales in {min}m"
        )
    }),
    t(Info, 0.5, false, |_, m| m.push_str("GET /healthz 200 1ms")),
];

/// Report-batch while a run is in progress.
pub(crate) static BATCH_RUN: &[Template] = &[
    t(Info, 4.0, false, |c, m| {
        let (n, total, rows, ms) = (c.int(1, 400), 400, c.int(5_000, 60_000), c.int(900, 6000));
        w!(
            m,
            "report daily_sales: processed chunk {n}/{total} ({rows} rows) in {ms}ms"
        )
    }),
    t(Debug, 2.0, false, |c, m| {
        let (mb, n) = (c.int(200, 900), c.int(10_000, 400_000));
        w!(m, "aggregation buffer {mb}MiB, {n} groups")
    }),
    t(Warn, 0.3, false, |c, m| {
        let min = c.int(3, 9);
        w!(
            m,
            "report daily_sales running for {min}m, longer than the 3m target"
        )
    }),
    t(Info, 0.5, false, |c, m| {
        let part = c.int(0, 64);
        w!(m, "uploaded part {part} to s3://shop-reports/daily_sales/")
    }),
];

/// The chatty logger's burst lines (a healthy service being verbose).
pub(crate) static CHATTY: &[Template] = &[
    t(Debug, 3.0, false, |c, m| {
        let (n, src, ms) = (
            c.int(100, 5000),
            c.pick(&["config-store", "redis", "local-snapshot"]),
            c.int(1, 90),
        );
        w!(m, "cache refresh: loaded {n} entries from {src} in {ms}ms")
    }),
    t(Debug, 3.0, false, |c, m| {
        let (flag, uid, on) = (
            c.pick(&["new-search", "dark-mode", "fast-checkout", "recs-v2"]),
            c.uid(),
            c.pick(&["true", "false"]),
        );
        w!(m, "feature flag {flag} evaluated for user {uid}: {on}")
    }),
    t(Info, 1.0, false, |c, m| {
        let seg = c.pick(&["new", "returning", "vip"]);
        w!(
            m,
            "prefetching hot keys for segment {seg}: {} keys",
            c.int(10, 900)
        )
    }),
    t(Debug, 2.0, false, |c, m| {
        let (n, shard) = (c.int(1, 64), c.int(0, 15));
        w!(m, "resolved {n} ids from index shard {shard}")
    }),
];
