//! Cost budget of one investigation: spent tokens and money, a signal raised the
//! moment the budget runs out so the coordinator can cancel outstanding agents, and
//! the split of the budget across the steps that spend it.
//!
//! The split: each spending step has a weight (equal by default). A step may spend
//! what is left of the whole budget times its weight over the weights of the steps
//! that have not finished yet, so a step that finishes under its share returns the
//! rest to the pool for the steps after it, and no step can eat the others' shares.

use compass_core::Cost;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Limits for one investigation. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetLimits {
    pub max_usd: Option<f64>,
    pub max_tokens: Option<u64>,
}

/// What one step may still spend. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Allowance {
    pub usd: Option<f64>,
    pub tokens: Option<u64>,
}

impl Allowance {
    /// Whether `estimate` fits.
    pub fn covers(&self, estimate: &Cost) -> bool {
        self.usd.is_none_or(|m| estimate.usd <= m + 1e-12)
            && self.tokens.is_none_or(|m| estimate.total_tokens() <= m)
    }
}

#[derive(Debug)]
struct Inner {
    limits: BudgetLimits,
    spent: Mutex<Cost>,
    exhausted: watch::Sender<bool>,
    /// Weights of the spending steps; empty: no split.
    shares: BTreeMap<String, f64>,
    finished: Mutex<BTreeSet<String>>,
}

/// A shared handle; clones see the same ledger.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Inner>);

impl Budget {
    pub fn new(limits: BudgetLimits) -> Self {
        Self::with_shares(limits, BTreeMap::new())
    }
    /// A budget split across the steps named in `shares` by their weights (a weight of
    /// zero gives a step only what the others left when they finished). Steps not named
    /// may spend whatever is left.
    pub fn with_shares(limits: BudgetLimits, shares: BTreeMap<String, f64>) -> Self {
        let (tx, _rx) = watch::channel(false);
        let shares = shares
            .into_iter()
            .map(|(k, w)| (k, if w.is_finite() { w.max(0.0) } else { 0.0 }))
            .collect();
        Budget(Arc::new(Inner {
            limits,
            spent: Mutex::new(Cost::default()),
            exhausted: tx,
            shares,
            finished: Mutex::new(BTreeSet::new()),
        }))
    }
    /// What `step` may spend now: its share of what is left (see the module docs).
    pub fn allowance(&self, step: &str) -> Allowance {
        let spent = self.spent();
        let l = self.0.limits;
        let fraction = match self.0.shares.get(step) {
            None => 1.0,
            Some(&w) => {
                let finished = self.0.finished.lock().expect("budget lock");
                let open: Vec<f64> = self
                    .0
                    .shares
                    .iter()
                    .filter(|(k, _)| k.as_str() == step || !finished.contains(k.as_str()))
                    .map(|(_, &w)| w)
                    .collect();
                let total: f64 = open.iter().sum();
                if open.len() == 1 {
                    1.0
                } else if total > 0.0 {
                    w / total
                } else {
                    0.0
                }
            }
        };
        Allowance {
            usd: l.max_usd.map(|m| (m - spent.usd).max(0.0) * fraction),
            tokens: l
                .max_tokens
                .map(|m| (m.saturating_sub(spent.total_tokens()) as f64 * fraction) as u64),
        }
    }
    /// `step` will spend no more: what it left of its share goes back to the pool.
    pub fn finish(&self, step: &str) {
        self.0
            .finished
            .lock()
            .expect("budget lock")
            .insert(step.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(v: f64) -> Cost {
        Cost {
            usd: v,
            ..Cost::default()
        }
    }

    #[test]
    fn equal_shares_and_unused_share_returns_to_the_pool() {
        let shares = [("a", 1.0), ("b", 1.0), ("c", 1.0)]
            .into_iter()
            .map(|(k, w)| (k.to_string(), w))
            .collect();
        let b = Budget::with_shares(
            BudgetLimits {
                max_usd: Some(0.9),
                max_tokens: None,
            },
            shares,
        );
        let a = b.allowance("a").usd.unwrap();
        assert!((a - 0.3).abs() < 1e-9, "{a}");
        // `a` spends 0.1 of its 0.3 and finishes: b and c split the 0.8 left.
        b.charge(&usd(0.1));
        b.finish("a");
        let bb = b.allowance("b").usd.unwrap();
        assert!((bb - 0.4).abs() < 1e-9, "{bb}");
        b.charge(&usd(0.4));
        b.finish("b");
        // The last open step gets everything left.
        let c = b.allowance("c").usd.unwrap();
        assert!((c - 0.4).abs() < 1e-9, "{c}");
        assert!(!b.allowance("c").covers(&usd(0.41)));
        assert!(b.allowance("c").covers(&usd(0.4)));
        // A step outside the split may use all that is left.
        assert!((b.allowance("other").usd.unwrap() - 0.4).abs() < 1e-9);
    }

    #[test]
    fn weights_and_token_limits() {
        let shares = [("big", 3.0), ("small", 1.0)]
            .into_iter()
            .map(|(k, w)| (k.to_string(), w))
            .collect();
        let b = Budget::with_shares(
            BudgetLimits {
                max_usd: None,
                max_tokens: Some(1000),
            },
            shares,
        );
        assert_eq!(b.allowance("big").tokens, Some(750));
        assert_eq!(b.allowance("small").tokens, Some(250));
        assert_eq!(b.allowance("big").usd, None);
        assert!(Budget::unlimited().allowance("x").covers(&usd(1e9)));
    }
}
