//! Everyday log lines of the application services, per kind of service, plus the
//! lines every application service writes (health checks, benign warnings).

use super::Level::{Debug, Info, Warn};
use super::{Template, t, w};
use crate::topology::Flavor;

pub(crate) fn for_flavor(flavor: Flavor) -> &'static [Template] {
    match flavor {
        Flavor::Frontend => FRONTEND,
        Flavor::Checkout => CHECKOUT,
        Flavor::Cart => CART,
        Flavor::Payment => PAYMENT,
        Flavor::Catalog => CATALOG,
        Flavor::Recommendation => RECOMMENDATION,
        Flavor::Shipping => SHIPPING,
        Flavor::Currency => CURRENCY,
        Flavor::User => USER,
        Flavor::Orders => ORDERS,
        Flavor::Inventory => INVENTORY,
        Flavor::Notification => NOTIFICATION,
        _ => GENERIC,
    }
}

/// Lines any application service writes now and then.
pub(crate) static COMMON: &[Template] = &[
    t(Debug, 4.0, false, |_, m| m.push_str("GET /healthz 200 0ms")),
    t(Debug, 2.0, false, |_, m| m.push_str("GET /metrics 200 1ms")),
    t(Info, 0.4, false, |c, m| {
        let n = c.int(2, 64);
        w!(
            m,
            "Connection pool to {} warmed up: {n} connections",
            c.callee()
        )
    }),
    t(Warn, 0.3, false, |c, m| {
        let ms = c.int(20, 400);
        w!(
            m,
            "Config server refresh took {ms}ms, serving cached configuration"
        )
    }),
    t(Warn, 0.2, true, |c, m| {
        let field = c.pick(&["legacyId", "promoCode", "x-client-version", "currencyHint"]);
        w!(m, "Deprecated field '{field}' present in request, ignoring")
    }),
    t(Warn, 0.15, false, |c, m| {
        let n = c.int(1, 4);
        w!(
            m,
            "DNS lookup for {}.shop.svc.cluster.local retried {n} time(s)",
            c.callee()
        )
    }),
    t(Info, 0.2, false, |c, m| {
        let kb = c.int(200, 9000);
        w!(m, "Flushed {kb} KiB of buffered telemetry")
    }),
];

static FRONTEND: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (sid, uid) = (c.hex(8), c.uid());
        w!(m, "session {sid} resolved for user {uid}")
    }),
    t(Info, 2.0, true, |c, m| {
        let page = c.pick(&["/", "/product/{id}", "/cart", "/search"]);
        let ms = c.int(3, 40);
        w!(m, "rendered {page} in {ms}ms (ssr)")
    }),
    t(Debug, 1.5, true, |c, m| {
        let (uid, variant) = (c.uid(), c.pick(&["a", "b"]));
        w!(m, "experiment checkout-button user={uid} variant={variant}")
    }),
    t(Warn, 0.2, true, |c, m| {
        let ip = c.ip();
        w!(m, "client {ip} closed connection before response was sent")
    }),
    t(Info, 0.8, true, |c, m| {
        let (uid, n) = (c.uid(), c.int(1, 9));
        w!(m, "cart badge refreshed for user {uid}: {n} items")
    }),
    t(Warn, 0.1, true, |c, m| {
        let ms = c.int(800, 3000);
        w!(
            m,
            "static asset /assets/app.{}.js served from origin in {ms}ms (CDN miss)",
            c.hex(4)
        )
    }),
    t(Info, 0.6, false, |c, m| {
        let n = c.int(200, 2000);
        w!(m, "active websocket connections: {n}")
    }),
];

static CHECKOUT: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (oid, uid, n, amt, cur) = (c.uuid(), c.uid(), c.int(1, 8), c.amount(), c.currency());
        w!(
            m,
            "placing order order_id={oid} user_id={uid} items={n} total={amt:.2} {cur}"
        )
    }),
    t(Info, 3.0, true, |c, m| {
        let (oid, amt, cur, pid) = (c.uuid(), c.amount(), c.currency(), c.hex(6));
        w!(
            m,
            "order placed order_id={oid} total={amt:.2} {cur} payment_id=pay_{pid}"
        )
    }),
    t(Info, 1.5, true, |c, m| {
        let region = c.pick(&["US-CA", "US-NY", "DE-BE", "FR-IDF", "GB-LND"]);
        let amt = c.amount() * 0.1;
        w!(m, "tax computed region={region} amount={amt:.2}")
    }),
    t(Warn, 0.3, true, |c, m| {
        let uid = c.uid();
        w!(
            m,
            "cart empty for user_id={uid}, rejecting checkout with 400"
        )
    }),
    t(Debug, 1.0, true, |c, m| {
        let code = c.pick(&["WELCOME10", "FREESHIP", "BF2026", "SPRING5"]);
        w!(m, "coupon {code} validated discount={}%", c.int(5, 25))
    }),
    t(Warn, 0.2, true, |c, m| {
        let code = c.pick(&["EXPIRED20", "OLDSALE", "TEST100"]);
        w!(m, "coupon {code} rejected: expired")
    }),
];

static CART: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (sku, n, uid) = (c.sku(), c.int(1, 5), c.uid());
        w!(m, "Added item {sku} x{n} to cart of user {uid}")
    }),
    t(Info, 3.0, true, |c, m| {
        let (uid, n, ms) = (c.uid(), c.int(0, 12), c.int(1, 6));
        w!(m, "Cart {uid} loaded from redis ({n} items) in {ms}ms")
    }),
    t(Debug, 3.0, true, |c, m| {
        let uid = c.uid();
        w!(m, "cache hit key=cart:{uid}")
    }),
    t(Debug, 0.8, true, |c, m| {
        let uid = c.uid();
        w!(m, "cache miss key=cart:{uid}, creating empty cart")
    }),
    t(Info, 1.0, true, |c, m| {
        let (uid, oid) = (c.uid(), c.uuid());
        w!(m, "Cart {uid} emptied after order {oid}")
    }),
    t(Warn, 0.15, true, |c, m| {
        let (uid, n) = (c.uid(), c.int(51, 80));
        w!(m, "Cart {uid} has {n} items, above soft limit 50")
    }),
];

static PAYMENT: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (txn, amt, cur, last4) = (c.hex(8), c.amount(), c.currency(), c.int(1000, 9999));
        w!(
            m,
            "charge authorized txn={txn} amount={amt:.2} {cur} card=****{last4}"
        )
    }),
    t(Warn, 0.4, true, |c, m| {
        let (txn, reason) = (
            c.hex(8),
            c.pick(&["insufficient_funds", "do_not_honor", "expired_card"]),
        );
        w!(m, "card declined txn={txn} reason={reason}")
    }),
    t(Info, 0.5, true, |c, m| {
        let key = c.uuid();
        w!(
            m,
            "idempotency key {key} replayed, returning cached response"
        )
    }),
    t(Info, 2.0, true, |c, m| {
        let ms = c.int(20, 140);
        w!(
            m,
            "psp call provider=acquirer-eu op=authorize latency={ms}ms"
        )
    }),
    t(Debug, 1.0, true, |c, m| {
        let score = c.int(1, 40);
        w!(m, "fraud pre-check score={score} threshold=70 result=pass")
    }),
    t(Info, 0.3, false, |c, m| {
        let n = c.int(20, 200);
        w!(m, "settlement batch queued: {n} captures")
    }),
];

static CATALOG: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (sku, ms) = (c.sku(), c.int(1, 9));
        w!(m, "product lookup sku={sku} cache=hit took={ms}ms")
    }),
    t(Info, 2.0, true, |c, m| {
        let q = c.pick(&[
            "running shoes",
            "espresso",
            "usb-c cable",
            "desk lamp",
            "yoga mat",
        ]);
        let (n, ms) = (c.int(0, 240), c.int(3, 60));
        w!(m, "search query=\"{q}\" results={n} took={ms}ms")
    }),
    t(Info, 1.0, true, |c, m| {
        let sku = c.sku();
        w!(m, "cache miss product:{sku}, loaded from store")
    }),
    t(Debug, 1.5, true, |c, m| {
        let n = c.int(8, 48);
        w!(m, "listing page size={n} category={}", c.int(1, 120))
    }),
    t(Info, 0.2, false, |c, m| {
        let (n, ms) = (c.int(100, 5000), c.int(200, 4000));
        w!(m, "reindexed {n} products in {ms}ms")
    }),
    t(Warn, 0.15, true, |c, m| {
        let sku = c.sku();
        w!(
            m,
            "product {sku} has no price in region, hiding from listing"
        )
    }),
];

static RECOMMENDATION: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (n, uid, v, ms) = (c.int(4, 12), c.uid(), c.int(3, 9), c.int(8, 60));
        w!(
            m,
            "Generated {n} recommendations for user {uid} model=als-v{v} in {ms}ms"
        )
    }),
    t(Info, 0.5, false, |c, m| {
        let pct = c.int(80, 99);
        w!(m, "Feature vector cache hit ratio {pct}% over last 60s")
    }),
    t(Warn, 0.3, true, |c, m| {
        let sku = c.sku();
        w!(
            m,
            "Model fallback: no embeddings for product {sku}, using popularity"
        )
    }),
    t(Debug, 2.0, true, |c, m| {
        let (n, seg) = (
            c.int(50, 500),
            c.pick(&["new", "returning", "vip", "dormant"]),
        );
        w!(m, "Scored {n} candidates for segment {seg}")
    }),
    t(Info, 0.1, false, |c, m| {
        let v = c.int(3, 9);
        w!(
            m,
            "Model als-v{v} reloaded from gs://models/recs/als-v{v}.bin"
        )
    }),
];

static SHIPPING: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (zip, carrier, cost) = (
            c.int(10000, 99999),
            c.pick(&["ups", "dhl", "fedex", "usps"]),
            c.amount() * 0.1,
        );
        w!(
            m,
            "quote computed zip={zip} carrier={carrier} cost={cost:.2}"
        )
    }),
    t(Info, 1.5, true, |c, m| {
        let (trk, carrier) = (c.hex(6).to_uppercase(), c.pick(&["ups", "dhl", "fedex"]));
        w!(m, "shipment created tracking=1Z{trk} carrier={carrier}")
    }),
    t(Warn, 0.2, true, |c, m| {
        let zip = c.int(10000, 99999);
        w!(
            m,
            "address validation soft-failed zip={zip}, using fallback geocoder"
        )
    }),
    t(Debug, 1.0, true, |c, m| {
        let kg = c.int(1, 30);
        w!(m, "package weight={kg}kg dims=standard")
    }),
];

static CURRENCY: &[Template] = &[
    t(Debug, 3.0, true, |c, m| {
        let (from, to) = (c.currency(), c.currency());
        let amt = c.amount();
        w!(
            m,
            "conversion {from}->{to} amount={amt:.2} rate={:.4}",
            0.5 + c.int(0, 1000) as f64 / 1000.0
        )
    }),
    t(Info, 0.2, false, |c, m| {
        let n = c.int(30, 34);
        w!(m, "rates refreshed from ECB feed: {n} currencies")
    }),
    t(Warn, 0.1, false, |_, m| {
        m.push_str("ECB feed stale for 2 refreshes, serving cached rates")
    }),
    t(Info, 1.0, true, |c, m| {
        let cur = c.currency();
        w!(m, "cache hit rates:{cur}")
    }),
];

static USER: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (uid, method, ip) = (
            c.uid(),
            c.pick(&["password", "oauth-google", "sso", "refresh-token"]),
            c.ip(),
        );
        w!(m, "User {uid} authenticated via {method} from {ip}")
    }),
    t(Info, 2.0, true, |c, m| {
        let (sid, uid) = (c.hex(8), c.uid());
        w!(m, "Session {sid} refreshed for user {uid}")
    }),
    t(Warn, 0.3, true, |c, m| {
        let sid = c.hex(8);
        w!(
            m,
            "Invalid token for session {sid} (expired), returning 401"
        )
    }),
    t(Debug, 1.5, true, |c, m| {
        let uid = c.uid();
        w!(m, "Profile cache hit user:{uid}")
    }),
    t(Warn, 0.1, true, |c, m| {
        let (ip, n) = (c.ip(), c.int(5, 12));
        w!(m, "Rate limit: {n} failed logins from {ip} in 60s")
    }),
];

static ORDERS: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (oid, uid, n, amt, cur) = (c.uuid(), c.uid(), c.int(1, 8), c.amount(), c.currency());
        w!(
            m,
            "Order {oid} created for user {uid}: {n} items, total {amt:.2} {cur}"
        )
    }),
    t(Debug, 2.0, true, |c, m| {
        let (oid, ms) = (c.uuid(), c.int(1, 12));
        w!(
            m,
            "Persisted order {oid} in {ms}ms (INSERT INTO orders ...)"
        )
    }),
    t(Info, 2.0, true, |c, m| {
        let (oid, p, o) = (c.uuid(), c.int(0, 12), c.int(100_000, 9_000_000));
        w!(
            m,
            "Published OrderCreated {oid} to order-events partition {p} offset {o}"
        )
    }),
    t(Debug, 0.5, false, |c, m| {
        let max = c.svc().pool_max.unwrap_or(10);
        let active = c.int(1, u64::from(max / 3).max(2));
        w!(
            m,
            "HikariPool-1 - Pool stats (total={max}, active={active}, idle={}, waiting=0)",
            u64::from(max) - active
        )
    }),
    t(Warn, 0.15, true, |c, m| {
        let oid = c.uuid();
        w!(m, "Order {oid} already exists, treating request as retry")
    }),
];

static INVENTORY: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (n, sku, r) = (c.int(1, 5), c.sku(), c.int(0, 900));
        w!(m, "Reserved {n} units of {sku} (remaining {r})")
    }),
    t(Debug, 2.0, true, |c, m| {
        let (n, ms) = (c.int(1, 40), c.int(1, 15));
        w!(m, "Stock query for {n} skus took {ms}ms")
    }),
    t(Info, 0.5, false, |c, m| {
        let rid = c.uuid();
        w!(m, "Released expired reservation {rid}")
    }),
    t(Debug, 0.5, false, |c, m| {
        let max = c.svc().pool_max.unwrap_or(10);
        let active = c.int(1, u64::from(max / 3).max(2));
        w!(
            m,
            "HikariPool-1 - Pool stats (total={max}, active={active}, idle={}, waiting=0)",
            u64::from(max) - active
        )
    }),
    t(Warn, 0.2, true, |c, m| {
        let sku = c.sku();
        w!(m, "Low stock for {sku}: below reorder point")
    }),
];

static NOTIFICATION: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (oid, p, o) = (c.uuid(), c.int(0, 12), c.int(100_000, 9_000_000));
        w!(
            m,
            "Consumed OrderCreated {oid} from order-events[{p}] offset {o}"
        )
    }),
    t(Info, 3.0, true, |c, m| {
        let (user, domain, mid) = (
            c.pick(&["j***", "m***", "a***", "s***"]),
            c.pick(&["gmail.com", "example.org", "outlook.com"]),
            c.hex(8),
        );
        w!(
            m,
            "Sent order confirmation email to {user}@{domain} (message-id {mid})"
        )
    }),
    t(Warn, 0.2, true, |c, m| {
        let mid = c.hex(8);
        w!(
            m,
            "SMTP relay responded 451 4.7.1 try again later, will retry message {mid}"
        )
    }),
    t(Info, 0.3, false, |c, m| {
        let lag = c.int(0, 40);
        w!(m, "consumer group notification lag={lag}")
    }),
];

static GENERIC: &[Template] = &[
    t(Info, 3.0, true, |c, m| {
        let (class, id, ms) = (c.class(), c.int(1, 999_999), c.int(1, 25));
        w!(m, "{class} lookup id={id} took {ms}ms")
    }),
    t(Info, 1.5, true, |c, m| {
        let (domain, id) = (c.svc().domain.clone(), c.int(1, 999_999));
        w!(m, "Updated {domain} record {id}")
    }),
    t(Debug, 2.0, true, |c, m| {
        let (domain, id) = (c.svc().domain.clone(), c.int(1, 999_999));
        let hit = c.pick(&["hit", "hit", "hit", "miss"]);
        w!(m, "cache {hit} {domain}:{id}")
    }),
    t(Warn, 0.2, true, |c, m| {
        let field = c.pick(&["legacyCode", "clientRef", "v1Flag"]);
        w!(m, "Deprecated field '{field}' in request from {}", c.ip())
    }),
    t(Info, 0.4, false, |c, m| {
        let (n, domain) = (c.int(10, 500), c.svc().domain.clone());
        w!(m, "Processed batch of {n} {domain} events")
    }),
];
