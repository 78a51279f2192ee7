//! What a model costs: USD per million prompt and completion tokens, per model id.
//!
//! The defaults are the providers' public list prices for common models (checked
//! 2026-11); `compass.toml`'s `[llm.pricing]` overrides or extends them. A model id
//! with a date or version suffix (`gpt-4o-mini-2024-07-18`) takes the price of the
//! longest listed prefix.

use super::Usage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// List price of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// USD per million prompt (input) tokens.
    pub input_per_mtok: f64,
    /// USD per million completion (output) tokens.
    pub output_per_mtok: f64,
}

impl Price {
    pub const FREE: Price = Price {
        input_per_mtok: 0.0,
        output_per_mtok: 0.0,
    };
    /// The cost of `usage` at this price.
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.prompt_tokens as f64 * self.input_per_mtok
            + usage.completion_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// (model id, USD per million input tokens, per million output tokens).
const DEFAULTS: &[(&str, f64, f64)] = &[
    // OpenAI
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("o3", 2.0, 8.0),
    ("o4-mini", 1.10, 4.40),
    // Anthropic
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-sonnet-4-5", 3.0, 15.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.80, 4.0),
    // Groq
    ("llama-3.1-8b-instant", 0.05, 0.08),
    ("llama-3.3-70b-versatile", 0.59, 0.79),
];

/// Prices by model id.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    /// The built-in list prices.
    fn default() -> Self {
        Self {
            prices: DEFAULTS
                .iter()
                .map(|&(model, i, o)| {
                    (
                        model.to_string(),
                        Price {
                            input_per_mtok: i,
                            output_per_mtok: o,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl PriceTable {
    /// A table with no prices at all.
    pub fn empty() -> Self {
        Self {
            prices: BTreeMap::new(),
        }
    }
    /// Set (or override) the price of `model`.
    pub fn set(&mut self, model: impl Into<String>, price: Price) {
        self.prices.insert(model.into(), price);
    }
    /// The price of `model`: an exact entry, else the longest entry that is a prefix
    /// of it followed by `-` (a dated or versioned id), else `None`.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.prices.get(model) {
            return Some(*p);
        }
        self.prices
            .iter()
            .filter(|(id, _)| {
                model.len() > id.len()
                    && model.starts_with(id.as_str())
                    && model.as_bytes()[id.len()] == b'-'
            })
            .max_by_key(|(id, _)| id.len())
            .map(|(_, p)| *p)
    }
    pub fn models(&self) -> impl Iterator<Item = (&str, &Price)> {
        self.prices.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_dated_ids_find_their_price() {
        let t = PriceTable::default();
        assert_eq!(t.lookup("gpt-4o-mini").unwrap().input_per_mtok, 0.15);
        // The longest prefix wins: gpt-4o-mini, not gpt-4o.
        assert_eq!(
            t.lookup("gpt-4o-mini-2024-07-18").unwrap().input_per_mtok,
            0.15
        );
        assert_eq!(t.lookup("gpt-4o-2024-08-06").unwrap().input_per_mtok, 2.5);
        assert_eq!(
            t.lookup("claude-haiku-4-5-20251001")
                .unwrap()
                .output_per_mtok,
            5.0
        );
        assert!(
            t.lookup("gpt-4omni").is_none(),
            "a prefix must end at a dash"
        );
        assert!(t.lookup("mistral-large").is_none());
    }

    #[test]
    fn overrides_replace_defaults_and_cost_is_per_million() {
        let mut t = PriceTable::default();
        t.set(
            "gpt-4o-mini",
            Price {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
            },
        );
        let p = t.lookup("gpt-4o-mini").unwrap();
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 500_000,
        };
        assert!((p.cost(usage) - 2.0).abs() < 1e-12);
        assert_eq!(Price::FREE.cost(usage), 0.0);
    }
}
