//! The synchronous calls between the base services, with the operation names their
//! spans use, the frontend's HTTP endpoints, and the asynchronous kafka feed.

/// A synchronous call from one service to another. `ops` are `client|server` operation
/// name pairs; a call picks one at random.
#[derive(Debug)]
pub(crate) struct BaseEdge {
    pub from: &'static str,
    pub to: &'static str,
    /// Mean calls per request of the caller.
    pub calls: f64,
    pub retries: u8,
    /// Fraction of the callee's failures that the caller turns into its own failure.
    pub propagate: f64,
    pub ops: &'static [&'static str],
}

const fn edge(
    from: &'static str,
    to: &'static str,
    calls: f64,
    retries: u8,
    propagate: f64,
    ops: &'static [&'static str],
) -> BaseEdge {
    BaseEdge {
        from,
        to,
        calls,
        retries,
        propagate,
        ops,
    }
}

const REDIS_GET: &[&str] = &["GET|GET"];

/// The frontend's calls. Their `calls` is computed from `ENDPOINTS`.
pub(crate) const FRONTEND_EDGES: &[BaseEdge] = &[
    edge(
        "frontend",
        "catalog",
        0.0,
        1,
        0.95,
        &[
            "GET catalog/ListProducts|GET /products",
            "GET catalog/GetProduct|GET /products/{id}",
            "GET catalog/SearchProducts|GET /products/search",
        ],
    ),
    edge(
        "frontend",
        "recommendation",
        0.0,
        0,
        0.25,
        &["GET recommendation/ListRecommendations|GET /recommendations"],
    ),
    edge(
        "frontend",
        "currency",
        0.0,
        1,
        0.9,
        &["GET currency/Convert|GET /convert"],
    ),
    edge(
        "frontend",
        "user",
        0.0,
        1,
        0.6,
        &["GET user/GetSession|GET /sessions/{id}"],
    ),
    edge(
        "frontend",
        "cart",
        0.0,
        1,
        0.95,
        &[
            "GET cart/GetCart|GET /cart/{user_id}",
            "POST cart/AddItem|POST /cart/{user_id}/items",
        ],
    ),
    edge(
        "frontend",
        "shipping",
        0.0,
        1,
        0.7,
        &["GET shipping/GetQuote|GET /quote"],
    ),
    edge(
        "frontend",
        "checkout",
        0.0,
        0,
        0.98,
        &["POST checkout/PlaceOrder|POST /checkout"],
    ),
];

/// A frontend HTTP route: its share of traffic and the calls it makes
/// (`(callee, mean calls, index into the edge's ops)`).
#[derive(Debug)]
pub(crate) struct BaseEndpoint {
    pub route: &'static str,
    pub weight: f64,
    pub calls: &'static [(&'static str, f64, usize)],
}

pub(crate) const ENDPOINTS: &[BaseEndpoint] = &[
    BaseEndpoint {
        route: "GET /",
        weight: 0.22,
        calls: &[
            ("catalog", 1.0, 0),
            ("recommendation", 1.0, 0),
            ("currency", 1.0, 0),
            ("user", 0.6, 0),
        ],
    },
    BaseEndpoint {
        route: "GET /product/{id}",
        weight: 0.32,
        calls: &[
            ("catalog", 1.0, 1),
            ("recommendation", 1.0, 0),
            ("currency", 2.0, 0),
            ("user", 0.5, 0),
        ],
    },
    BaseEndpoint {
        route: "GET /cart",
        weight: 0.14,
        calls: &[
            ("cart", 1.0, 0),
            ("currency", 1.0, 0),
            ("shipping", 1.0, 0),
            ("user", 0.5, 0),
            ("recommendation", 0.5, 0),
        ],
    },
    BaseEndpoint {
        route: "POST /cart",
        weight: 0.10,
        calls: &[("cart", 1.0, 1), ("catalog", 1.0, 1)],
    },
    BaseEndpoint {
        route: "POST /checkout",
        weight: 0.12,
        calls: &[("checkout", 1.0, 0), ("user", 1.0, 0), ("currency", 1.0, 0)],
    },
    BaseEndpoint {
        route: "GET /search",
        weight: 0.10,
        calls: &[("catalog", 1.0, 2), ("currency", 1.0, 0)],
    },
];

/// Calls below the frontend.
pub(crate) const EDGES: &[BaseEdge] = &[
    edge(
        "checkout",
        "cart",
        2.0,
        1,
        1.0,
        &[
            "GET cart/GetCart|GET /cart/{user_id}",
            "DELETE cart/EmptyCart|DELETE /cart/{user_id}",
        ],
    ),
    edge(
        "checkout",
        "payment",
        1.0,
        0,
        1.0,
        &["POST payment/Charge|POST /charge"],
    ),
    edge(
        "checkout",
        "shipping",
        1.0,
        1,
        0.9,
        &["POST shipping/ShipOrder|POST /ship"],
    ),
    edge(
        "checkout",
        "currency",
        1.0,
        1,
        1.0,
        &["GET currency/Convert|GET /convert"],
    ),
    edge(
        "checkout",
        "orders",
        1.0,
        0,
        1.0,
        &["POST orders/CreateOrder|POST /orders"],
    ),
    edge(
        "checkout",
        "user",
        1.0,
        1,
        1.0,
        &["GET user/GetUser|GET /users/{id}"],
    ),
    edge(
        "cart",
        "redis",
        2.0,
        1,
        1.0,
        &["HGETALL|HGETALL", "HSET|HSET"],
    ),
    edge("catalog", "redis", 1.0, 1, 0.3, REDIS_GET),
    edge(
        "catalog",
        "inventory",
        0.4,
        1,
        0.5,
        &["GET inventory/GetStock|GET /stock/{sku}"],
    ),
    edge(
        "recommendation",
        "catalog",
        1.0,
        1,
        0.9,
        &["GET catalog/ListProducts|GET /products"],
    ),
    edge("recommendation", "redis", 0.5, 1, 0.2, REDIS_GET),
    edge(
        "shipping",
        "currency",
        1.0,
        1,
        1.0,
        &["GET currency/Convert|GET /convert"],
    ),
    edge("user", "redis", 1.0, 1, 0.8, REDIS_GET),
    edge(
        "orders",
        "postgres",
        3.0,
        0,
        1.0,
        &[
            "INSERT orders|INSERT orders",
            "SELECT orders|SELECT orders",
            "UPDATE orders|UPDATE orders",
        ],
    ),
    edge(
        "orders",
        "inventory",
        1.0,
        0,
        1.0,
        &["POST inventory/Reserve|POST /reservations"],
    ),
    edge(
        "orders",
        "kafka",
        1.0,
        1,
        0.5,
        &["publish order-events|order-events publish"],
    ),
    edge(
        "inventory",
        "postgres",
        1.5,
        0,
        1.0,
        &["SELECT stock|SELECT stock", "UPDATE stock|UPDATE stock"],
    ),
    edge("inventory", "redis", 0.3, 1, 0.2, REDIS_GET),
    edge(
        "notification",
        "kafka",
        1.0,
        1,
        0.5,
        &["poll order-events|order-events poll"],
    ),
    edge(
        "notification",
        "user",
        1.0,
        1,
        1.0,
        &["GET user/GetUser|GET /users/{id}"],
    ),
    edge(
        "report-batch",
        "postgres",
        1.0,
        0,
        1.0,
        &["SELECT report_daily_sales|SELECT orders JOIN order_items"],
    ),
];

/// Asynchronous feed: `notification` consumes what `orders` publishes to kafka. It adds
/// traffic but never latency or errors upstream.
pub(crate) const FEED: (&str, &str) = ("orders", "notification");
