//! Cost budget of one investigation: spent tokens and money, and a signal raised the
//! moment the budget runs out so the coordinator can cancel outstanding agents.

use compass_core::Cost;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Limits for one investigation. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetLimits {
    pub max_usd: Option<f64>,
    pub max_tokens: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    limits: BudgetLimits,
    spent: Mutex<Cost>,
    exhausted: watch::Sender<bool>,
}

/// A shared handle; clones see the same ledger.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Inner>);

impl Budget {
    pub fn new(limits: BudgetLimits) -> Self {
        let (tx, _rx) = watch::channel(false);
        Budget(Arc::new(Inner {
            limits,
            spent: Mutex::new(Cost::default()),
            exhausted: tx,
        }))
    }
    pub fn unlimited() -> Self {
        Self::new(BudgetLimits::default())
    }
    pub fn limits(&self) -> BudgetLimits {
        self.0.limits
    }
    pub fn spent(&self) -> Cost {
        *self.0.spent.lock().expect("budget lock")
    }
    /// Whether spending `estimate` more would stay within the limits.
    pub fn allows(&self, estimate: &Cost) -> bool {
        let mut after = self.spent();
        after.add(estimate);
        self.within(&after)
    }
    fn within(&self, c: &Cost) -> bool {
        let l = self.0.limits;
        l.max_usd.is_none_or(|m| c.usd <= m) && l.max_tokens.is_none_or(|m| c.total_tokens() <= m)
    }
    /// Record spend. Returns `false` (and raises the exhausted signal) once the limits
    /// are reached or passed.
    pub fn charge(&self, cost: &Cost) -> bool {
        let mut spent = self.0.spent.lock().expect("budget lock");
        spent.add(cost);
        let l = self.0.limits;
        let exhausted = l.max_usd.is_some_and(|m| spent.usd >= m)
            || l.max_tokens.is_some_and(|m| spent.total_tokens() >= m);
        if exhausted {
            self.0.exhausted.send_replace(true);
        }
        !exhausted
    }
    pub fn is_exhausted(&self) -> bool {
        *self.0.exhausted.borrow()
    }
    /// Resolves once the budget is exhausted.
    pub async fn exhausted(&self) {
        let mut rx = self.0.exhausted.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}
