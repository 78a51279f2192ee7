//! Change events: time windows and a malformed line failing with file and line.

use super::{between, sources, whole_hour};
use compass_core::ChangeKind;

#[tokio::test]
async fn changes_in_a_window() {
    let changes = sources("tiny").changes.unwrap();
    let all = changes.fetch_changes(whole_hour()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].kind, ChangeKind::ConfigChange);
    let deploys = changes
        .fetch_changes(between("40:00.000", "50:00.000"))
        .await
        .unwrap();
    assert_eq!(deploys.len(), 1);
    assert_eq!(deploys[0].kind, ChangeKind::Deploy);
    assert_eq!(deploys[0].service, "payment");
    assert_eq!(deploys[0].version.as_deref(), Some("v2.15.0"));
    assert_eq!(deploys[0].description, "rollout payment v2.14.1 -> v2.15.0");
}

#[tokio::test]
async fn a_malformed_event_names_file_and_line() {
    let changes = sources("malformed-log").changes.unwrap();
    let error = changes.fetch_changes(whole_hour()).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("bundle:changes: bad data: events.jsonl line 2: column"),
        "{text}"
    );
    assert!(text.contains("unknown variant `rollback`"), "{text}");
}
