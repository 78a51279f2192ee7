//! A model held to a hard budget outside an investigation (drill generation, action
//! routing): each call's cost is estimated before it is made (prompt tokens counted,
//! the whole `max_tokens` assumed) and refused when it would pass the budget; after
//! the call the usage is charged and written to the cost ledger under `step`.

use super::{
    CallOutcome, ChatRequest, ChatResponse, CostLedger, LanguageModel, LedgerEntry, LlmError, Price,
};
use crate::budget::{Budget, BudgetLimits};
use async_trait::async_trait;
use compass_core::Cost;
use std::sync::Arc;

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("model", &self.inner.model())
            .field("step", &self.step)
            .field("spent", &self.budget.spent())
            .finish()
    }
}

pub struct Metered {
    inner: Arc<dyn LanguageModel>,
    price: Price,
    budget: Budget,
    ledger: Arc<dyn CostLedger>,
    /// The ledger's step name (`drill`, `route`).
    step: String,
    /// The ledger's investigation id (what the spend was for).
    purpose: String,
}

impl Metered {
    pub fn new(
        inner: Arc<dyn LanguageModel>,
        price: Price,
        max_usd: f64,
        ledger: Arc<dyn CostLedger>,
        step: &str,
        purpose: &str,
    ) -> Self {
        Metered {
            inner,
            price,
            budget: Budget::new(BudgetLimits {
                max_usd: Some(max_usd),
                max_tokens: None,
            }),
            ledger,
            step: step.to_string(),
            purpose: purpose.to_string(),
        }
    }

    /// What has been spent so far.
    pub fn spent(&self) -> Cost {
        self.budget.spent()
    }
}

#[async_trait]
impl LanguageModel for Metered {
    fn provider(&self) -> &str {
        self.inner.provider()
    }
    fn model(&self) -> &str {
        self.inner.model()
    }
    fn count_prompt_tokens(&self, request: &ChatRequest) -> u64 {
        self.inner.count_prompt_tokens(request)
    }
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let prompt = self.inner.count_prompt_tokens(request);
        let estimate = super::Usage {
            prompt_tokens: prompt,
            completion_tokens: u64::from(request.max_tokens),
        };
        let est = Cost {
            prompt_tokens: prompt,
            completion_tokens: u64::from(request.max_tokens),
            usd: self.price.cost(estimate),
        };
        if !self.budget.allows(&est) {
            let spent = self.budget.spent().usd;
            let max = self.budget.limits().max_usd.unwrap_or(0.0);
            return Err(LlmError::BudgetExceeded(format!(
                "the call was estimated at ${:.4} and ${spent:.4} of ${max:.4} is spent",
                est.usd
            )));
        }
        let answer = self.inner.complete(request).await;
        let (usage, reported, outcome) = match &answer {
            Ok(a) => {
                let (u, r) = a.usage_or_counted(prompt);
                (u, r, CallOutcome::Ok)
            }
            // a failed call may still have been billed: charge the prompt
            Err(_) => (
                super::Usage {
                    prompt_tokens: prompt,
                    completion_tokens: 0,
                },
                false,
                CallOutcome::Failed,
            ),
        };
        let usd = self.price.cost(usage);
        self.budget.charge(&Cost {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            usd,
        });
        let entry = LedgerEntry {
            at: super::analyst::now_ms(),
            investigation_id: self.purpose.clone(),
            agent: self.step.clone(),
            provider: self.inner.provider().to_string(),
            model: self.inner.model().to_string(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            usd,
            reported,
            outcome,
        };
        if let Err(e) = self.ledger.record(&entry).await {
            tracing::warn!(error = %e, "cannot record an LLM call in the cost ledger");
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatMessage, MemoryLedger};

    struct Echo;

    #[async_trait]
    impl LanguageModel for Echo {
        fn provider(&self) -> &str {
            "echo"
        }
        fn model(&self) -> &str {
            "echo-1"
        }
        fn count_prompt_tokens(&self, _: &ChatRequest) -> u64 {
            1000
        }
        async fn complete(&self, _: &ChatRequest) -> Result<ChatResponse, LlmError> {
            Ok(ChatResponse {
                content: "{}".into(),
                usage: Some(super::super::Usage {
                    prompt_tokens: 1000,
                    completion_tokens: 100,
                }),
                model: "echo-1".into(),
                finish_reason: None,
            })
        }
    }

    #[tokio::test]
    async fn calls_stop_at_the_budget_and_land_in_the_ledger() {
        let ledger = Arc::new(MemoryLedger::default());
        // $1/M in, $10/M out: each call is estimated at 0.001 + 0.002 = $0.003 and
        // costs 0.001 + 0.001 = $0.002
        let m = Metered::new(
            Arc::new(Echo),
            Price {
                input_per_mtok: 1.0,
                output_per_mtok: 10.0,
            },
            0.0065,
            ledger.clone(),
            "drill",
            "drill-1",
        );
        let req = ChatRequest {
            messages: vec![ChatMessage::user("x")],
            max_tokens: 200,
            temperature: 0.0,
            schema: None,
        };
        let mut ok = 0;
        let mut refused = None;
        for _ in 0..5 {
            match m.complete(&req).await {
                Ok(_) => ok += 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert_eq!(ok, 2, "the third estimate (0.004 + 0.003) passes 0.0065");
        assert!(matches!(refused, Some(LlmError::BudgetExceeded(_))));
        let entries = ledger
            .entries(compass_core::model::TimeRange {
                start: 0,
                end: i64::MAX,
            })
            .await
            .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].agent, "drill");
        assert!((m.spent().usd - 0.004).abs() < 1e-9);
    }
}
