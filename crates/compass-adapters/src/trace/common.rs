//! What the Tempo and Jaeger conversions share: finishing a fetched trace (span ids
//! deduplicated, the peer of each client span inferred), span kinds by name, the
//! call-graph edges of a trace, the time slices a search is split into, and trace-id
//! normalisation to lowercase hex (Tempo's JSON carries base64 ids).
//!
//! Peer inference order for a client span: the `peer.service` attribute; else the
//! service of its child server span in the same trace (reliable: it is the callee's
//! own name); else the host of `server.address`, `net.peer.name` or `http.host`
//! (port stripped), which names callees that are not traced themselves (databases,
//! caches, third parties).

use compass_core::{CallGraph, Span, SpanKind, TimeRange};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The service name given to spans whose resource or process names none.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// Attributes naming the address a client span called, most specific first.
pub(crate) const ADDRESS_KEYS: [&str; 3] = ["server.address", "net.peer.name", "http.host"];

/// A converted span before its trace is finished.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    /// `peer_service` holds the explicit `peer.service` attribute, if any.
    pub span: Span,
    /// The host named by an address attribute, port stripped.
    pub address_peer: Option<String>,
}

/// One fetched trace: its finished spans and what was wrong with the rest.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub spans: Vec<Span>,
    /// Spans skipped or patched, and why (one line per kind of problem).
    pub problems: Vec<String>,
}

/// A span kind from its OTLP (`SPAN_KIND_SERVER`) or Jaeger (`server`) spelling.
/// Producers call like clients and consumers serve like servers; anything else
/// (unspecified, unknown) is internal.
pub(crate) fn kind_from_name(name: &str) -> SpanKind {
    let name = name.trim().to_ascii_lowercase();
    match name.strip_prefix("span_kind_").unwrap_or(&name) {
        "server" | "consumer" => SpanKind::Server,
        "client" | "producer" => SpanKind::Client,
        _ => SpanKind::Internal,
    }
}

/// Counts of what was wrong with a trace's spans, reported once per kind.
#[derive(Debug, Default)]
pub(crate) struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    pub fn note(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }

    pub fn into_problems(self, trace_id: &str) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(what, n)| format!("trace {trace_id}: {n} span(s) {what}"))
            .collect()
    }
}

/// Finish one trace: keep the first copy of each span id, then give every client span
/// its peer (see the module doc for the order); other spans get none.
pub(crate) fn finish_trace(drafts: Vec<Draft>) -> Vec<Span> {
    let mut seen = HashSet::new();
    let drafts: Vec<Draft> = drafts
        .into_iter()
        .filter(|d| seen.insert(d.span.span_id.clone()))
        .collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if let Some(parent) = &d.span.parent_id {
            children.entry(parent.as_str()).or_default().push(i);
        }
    }
    let peers: Vec<Option<String>> = drafts
        .iter()
        .map(|d| {
            if d.span.kind != SpanKind::Client {
                return None;
            }
            let kids = children.get(d.span.span_id.as_str());
            let child_server = kids.into_iter().flatten().find_map(|&c| {
                (drafts[c].span.kind == SpanKind::Server).then(|| drafts[c].span.service.clone())
            });
            d.span
                .peer_service
                .clone()
                .or(child_server)
                .or_else(|| d.address_peer.clone())
        })
        .collect();
    drafts
        .into_iter()
        .zip(peers)
        .map(|(d, peer)| Span {
            peer_service: peer,
            ..d.span
        })
        .collect()
}

/// The host of an address attribute (`checkout:8080`, `[::1]:80`, `db`), if any.
pub(crate) fn host_of(address: &str) -> Option<String> {
    let address = address.trim();
    let address = address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host = if let Some(rest) = address.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else if address.matches(':').count() == 1 {
        address.split(':').next().unwrap_or_default()
    } else {
        address
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Call-graph edges of one finished trace: client span -> its peer, and parent ->
/// child where the two are in different services.
pub(crate) fn add_edges(graph: &mut CallGraph, spans: &[Span]) {
    let service_of: HashMap<&str, &str> = spans
        .iter()
        .map(|s| (s.span_id.as_str(), s.service.as_str()))
        .collect();
    for s in spans {
        if s.kind == SpanKind::Client
            && let Some(peer) = &s.peer_service
        {
            graph.add(&s.service, peer);
        }
        if let Some(parent) = s.parent_id.as_deref().and_then(|p| service_of.get(p)) {
            graph.add(parent, &s.service);
        }
    }
}

/// `range` cut into at most `count` equal slices of at least a second (searches are
/// per slice so the baseline gets traces too, not only the newest minutes).
pub(crate) fn slices(range: TimeRange, count: usize) -> Vec<TimeRange> {
    if range.is_empty() {
        return Vec::new();
    }
    let seconds = (range.duration_ms() / 1000).max(1);
    let count = (count.max(1) as i64).min(seconds);
    let step = range.duration_ms() / count;
    (0..count)
        .map(|i| {
            let end = if i == count - 1 {
                range.end
            } else {
                range.start + (i + 1) * step
            };
            TimeRange::new(range.start + i * step, end)
        })
        .collect()
}

/// A trace or span id as lowercase hex: hex ids (OTLP/JSON, Jaeger, Tempo's search)
/// are lowercased; base64 ids (Tempo's `/api/traces`) are decoded. `None` if neither.
pub(crate) fn normalise_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(raw.to_ascii_lowercase());
    }
    let bytes = decode_base64(raw)?;
    if bytes.is_empty() {
        return None;
    }
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Standard or URL-safe base64, padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let text = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use compass_core::SpanStatus;

    fn span(id: &str, parent: Option<&str>, service: &str, kind: SpanKind) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_id: parent.map(str::to_string),
            service: service.into(),
            operation: "op".into(),
            kind,
            start: 0,
            duration_ms: 1.0,
            status: SpanStatus::Ok,
            peer_service: None,
        }
    }

    fn draft(span: Span, address: Option<&str>) -> Draft {
        Draft {
            span,
            address_peer: address.map(str::to_string),
        }
    }

    #[test]
    fn peers_come_from_the_attribute_then_the_child_then_the_address() {
        let mut explicit = span("a", None, "front", SpanKind::Client);
        explicit.peer_service = Some("declared".into());
        let spans = finish_trace(vec![
            draft(explicit, Some("host-a")),
            draft(span("b", None, "front", SpanKind::Client), Some("host-b")),
            draft(span("b1", Some("b"), "checkout", SpanKind::Server), None),
            draft(span("c", None, "front", SpanKind::Client), Some("db")),
            draft(span("d", None, "front", SpanKind::Server), Some("x")),
            draft(span("d", None, "front", SpanKind::Client), Some("dup")),
        ]);
        let peers: Vec<_> = spans.iter().map(|s| s.peer_service.as_deref()).collect();
        assert_eq!(
            peers,
            [Some("declared"), Some("checkout"), None, Some("db"), None]
        );
    }

    #[test]
    fn hosts_lose_their_ports_and_schemes() {
        assert_eq!(host_of("checkout:8080").as_deref(), Some("checkout"));
        assert_eq!(host_of("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(host_of("::1").as_deref(), Some("::1"));
        assert_eq!(host_of("http://pay.svc:9/x").as_deref(), Some("pay.svc"));
        assert_eq!(host_of(" "), None);
    }

    #[test]
    fn ids_become_lowercase_hex() {
        assert_eq!(
            normalise_id("AAAAAAAAAABJ8mZpeWDXHQ==").as_deref(),
            Some("000000000000000049f266697960d71d")
        );
        assert_eq!(
            normalise_id("AAAAAAAAEjQ=").as_deref(),
            Some("0000000000001234")
        );
        assert_eq!(normalise_id("_-8").as_deref(), Some("ffef"));
        assert_eq!(normalise_id("ABCdef01").as_deref(), Some("abcdef01"));
        assert_eq!(normalise_id("not base64!"), None);
        assert_eq!(normalise_id("Q"), None);
        assert_eq!(normalise_id(""), None);
    }

    #[test]
    fn edges_come_from_peers_and_cross_service_parents() {
        let mut client = span("a", Some("r"), "front", SpanKind::Client);
        client.peer_service = Some("db".into());
        let spans = [
            span("r", None, "front", SpanKind::Server),
            client,
            span("s", Some("r"), "cart", SpanKind::Server),
            span("i", Some("s"), "cart", SpanKind::Internal),
        ];
        let mut graph = CallGraph::default();
        add_edges(&mut graph, &spans);
        let edges: Vec<_> = graph
            .edges
            .iter()
            .map(|(a, b)| format!("{a}->{b}"))
            .collect();
        assert_eq!(edges, ["front->cart", "front->db"]);
    }

    #[test]
    fn slices_cover_the_range_and_are_at_least_a_second() {
        let s = slices(TimeRange::new(0, 10_000), 4);
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].start, s[3].end), (0, 10_000));
        assert!(s.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(slices(TimeRange::new(0, 2_500), 10).len(), 2);
        assert_eq!(slices(TimeRange::new(0, 10), 10).len(), 1);
        assert!(slices(TimeRange::new(5, 5), 3).is_empty());
    }
}
