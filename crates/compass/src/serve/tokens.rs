//! `compass token create|list|revoke`: API tokens straight in the store (the first
//! admin token has to come from somewhere). A token is printed once; only its SHA-256
//! is kept.

use super::{database_url, open_store};
use crate::cli::UsageError;
use anyhow::Result;
use compass_adapters::config::{ServeSettings, Settings};
use compass_engine::store::{AuditRecord, Role, Store};
use std::path::Path;

async fn store(
    url: Option<&str>,
    config: Option<&Path>,
) -> Result<std::sync::Arc<compass_adapters::store::SqlStore>> {
    let serve = match config {
        Some(p) => {
            Settings::load(p)
                .map_err(|e| UsageError(e.to_string()))?
                .serve
        }
        None => ServeSettings::default(),
    };
    open_store(&database_url(url, &serve)).await
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub async fn create(
    url: Option<&str>,
    config: Option<&Path>,
    name: &str,
    role: &str,
) -> Result<()> {
    let role = Role::parse(role).ok_or_else(|| {
        UsageError(format!(
            "--role {role}: use viewer, responder, approver or admin"
        ))
    })?;
    let store = store(url, config).await?;
    let token = super::new_token();
    let now = chrono::Utc::now().timestamp_millis();
    let rec = store
        .create_token(name, role, &super::hash_token(&token), now)
        .await?;
    store
        .audit(&AuditRecord {
            at: now,
            actor: "cli".into(),
            action: "token.create".into(),
            target: rec.name.clone(),
            detail: role.as_str().into(),
        })
        .await?;
    eprintln!(
        "created token `{}` ({}), id {}; it is shown only now:",
        rec.name,
        role.as_str(),
        rec.id
    );
    println!("{token}");
    Ok(())
}

pub async fn list(url: Option<&str>, config: Option<&Path>) -> Result<()> {
    let store = store(url, config).await?;
    let tokens = store.tokens().await?;
    if tokens.is_empty() {
        println!("no tokens; create one with: compass token create --name NAME --role admin");
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:<20} {:<20} ID",
        "NAME", "ROLE", "CREATED", "REVOKED"
    );
    for t in tokens {
        println!(
            "{:<24} {:<10} {:<20} {:<20} {}",
            t.name,
            t.role.as_str(),
            utc(t.created_at),
            t.revoked_at.map(utc).unwrap_or_else(|| "-".into()),
            t.id
        );
    }
    Ok(())
}

pub async fn revoke(url: Option<&str>, config: Option<&Path>, name: &str) -> Result<()> {
    let store = store(url, config).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let rec = store.revoke_token(name, now).await?;
    store
        .audit(&AuditRecord {
            at: now,
            actor: "cli".into(),
            action: "token.revoke".into(),
            target: rec.name.clone(),
            detail: String::new(),
        })
        .await?;
    println!("revoked token `{}`", rec.name);
    Ok(())
}
