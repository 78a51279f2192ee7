//! Log message templates. A template is a level, a weight, whether the line belongs to a
//! request (and so carries a trace id), and a function that renders the message with
//! variable fields (ids, amounts, durations, IPs) drawn from the line's random stream.
//!
//! `domain` holds the everyday lines per kind of service, `infra` the database, cache,
//! queue, batch and chatty-logger lines, `faults` the error, exception and lifecycle
//! lines whose exact wording the investigation agents may match.

pub(crate) mod domain;
pub(crate) mod faults;
pub(crate) mod infra;

use crate::noise;
use crate::topology::{Flavor, Lang, Service, Topology};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write;

/// Writes into a `String`, ignoring the infallible result.
macro_rules! w {
    ($m:expr, $($arg:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt($m, format_args!($($arg)*));
    }};
}
pub(crate) use w;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

/// Renders a message into the buffer.
pub(crate) type Render = fn(&mut Ctx<'_, '_>, &mut String);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Template {
    pub level: Level,
    pub weight: f64,
    /// Part of a request: the line carries a trace id.
    pub scoped: bool,
    pub render: Render,
}

pub(crate) const fn t(level: Level, weight: f64, scoped: bool, render: Render) -> Template {
    Template {
        level,
        weight,
        scoped,
        render,
    }
}

/// What a template may draw on: the stream, the service and its state at this step.
pub(crate) struct Ctx<'a, 'r> {
    pub rng: &'r mut ChaCha8Rng,
    pub topo: &'a Topology,
    pub s: usize,
    /// The service's incoming `METHOD /route` strings.
    pub routes: &'a [String],
}

impl Ctx<'_, '_> {
    pub(crate) fn svc(&self) -> &Service {
        &self.topo.services[self.s]
    }
    pub(crate) fn int(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..hi)
    }
    pub(crate) fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
        items[self.rng.random_range(0..items.len())]
    }
    pub(crate) fn uid(&mut self) -> u64 {
        self.rng.random_range(1000..99_999)
    }
    pub(crate) fn sku(&mut self) -> String {
        const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
        (0..10)
            .map(|_| char::from(A[self.rng.random_range(0..A.len())]))
            .collect()
    }
    pub(crate) fn amount(&mut self) -> f64 {
        (noise::lognormal_mean(self.rng, 80.0, 0.8) * 100.0).round() / 100.0
    }
    pub(crate) fn currency(&mut self) -> &'static str {
        self.pick(&["USD", "EUR", "GBP", "JPY", "CAD"])
    }
    pub(crate) fn uuid(&mut self) -> String {
        noise::uuid(self.rng)
    }
    pub(crate) fn hex(&mut self, bytes: usize) -> String {
        noise::hex_string(self.rng, bytes)
    }
    pub(crate) fn ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.int(0, 64),
            self.int(0, 255),
            self.int(1, 255)
        )
    }
    /// A random incoming `METHOD /path` with ids filled in.
    pub(crate) fn route(&mut self, out: &mut String) {
        if self.routes.is_empty() {
            out.push_str("GET /");
            return;
        }
        let route = &self.routes[self.rng.random_range(0..self.routes.len())];
        fill_route(self.rng, route, out);
    }
    /// A callee name of this service, or `upstream` for leaves.
    pub(crate) fn callee(&mut self) -> String {
        let out = &self.topo.out[self.s];
        if out.is_empty() {
            return "upstream".into();
        }
        let e = out[self.rng.random_range(0..out.len())];
        self.topo.services[self.topo.edges[e].to].name.clone()
    }
    pub(crate) fn class(&self) -> String {
        camel(&self.svc().domain)
    }
}

/// Replaces `{...}` placeholders in a route with plausible ids.
fn fill_route(rng: &mut ChaCha8Rng, route: &str, out: &mut String) {
    let mut rest = route;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        let _ = write!(out, "{}", rng.random_range(1000..99_999));
        rest = &rest[close.min(rest.len())..];
    }
    out.push_str(rest);
}

pub(crate) fn camel(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The everyday templates of a service kind (excluding the access line).
pub(crate) fn for_flavor(flavor: Flavor) -> &'static [Template] {
    match flavor {
        Flavor::Postgres => infra::POSTGRES,
        Flavor::Redis => infra::REDIS,
        Flavor::Kafka => infra::KAFKA,
        Flavor::ReportBatch => infra::BATCH_IDLE,
        other => domain::for_flavor(other),
    }
}

/// Whether a service writes HTTP access lines.
pub(crate) fn has_access_log(flavor: Flavor) -> bool {
    !matches!(
        flavor,
        Flavor::Postgres | Flavor::Redis | Flavor::Kafka | Flavor::ReportBatch
    )
}

/// The access line of one request: `GET /cart/4821 200 12ms` in the service's style.
pub(crate) fn access(c: &mut Ctx<'_, '_>, status: u16, ms: f64, out: &mut String) {
    let mut route = String::with_capacity(32);
    c.route(&mut route);
    let bytes = c.int(120, 48_000);
    match c.svc().lang {
        Lang::Java => w!(out, "{route} {status} {}ms", ms.round()),
        Lang::Go => {
            let (method, path) = route.split_once(' ').unwrap_or(("GET", &route));
            w!(
                out,
                "request completed method={method} path={path} status={status} duration={ms:.1}ms bytes={bytes}"
            )
        }
        Lang::Node => w!(out, "{route} {status} {ms:.3} ms - {bytes}"),
        Lang::Python => {
            let ip = c.ip();
            w!(
                out,
                "{ip} - \"{route} HTTP/1.1\" {status} {bytes} {}ms",
                ms.round()
            )
        }
    }
}

/// Picks a template by weight.
pub(crate) fn choose<'t>(rng: &mut ChaCha8Rng, templates: &'t [Template]) -> &'t Template {
    let total: f64 = templates.iter().map(|t| t.weight).sum();
    let mut x = rng.random::<f64>() * total;
    for t in templates {
        if x < t.weight {
            return t;
        }
        x -= t.weight;
    }
    &templates[templates.len() - 1]
}
