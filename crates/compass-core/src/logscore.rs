//! Scoring a log parser against ground-truth templates, as the Loghub benchmarks do.
//!
//! - **GA** (grouping accuracy): share of lines whose predicted group holds exactly the
//!   lines of their true group.
//! - **PA** (parsing accuracy): share of lines whose predicted template text equals the
//!   true template text.
//! - **FGA**: F1 over groups, a predicted group being correct when its lines are exactly
//!   one true group's lines.
//! - **FTA**: F1 over templates, a predicted template being correct when its group is
//!   correct and its text equals the true template.
//!
//! Template texts are compared after normalising whitespace; nothing else is forgiven.

use std::collections::HashMap;

/// One parsed line: the group (template id) and template text, predicted or true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub group: &'a str,
    pub template: &'a str,
}

/// The four accuracy figures, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParseScores {
    pub grouping_accuracy: f64,
    pub parsing_accuracy: f64,
    pub f1_grouping: f64,
    pub f1_template: f64,
}

fn normalise(template: &str) -> String {
    template.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn f1(correct: usize, predicted: usize, actual: usize) -> f64 {
    if correct == 0 || predicted == 0 || actual == 0 {
        return 0.0;
    }
    let precision = correct as f64 / predicted as f64;
    let recall = correct as f64 / actual as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Lines of each group, as sorted line-index lists.
fn groups<'a>(rows: &[Parsed<'a>]) -> HashMap<&'a str, Vec<usize>> {
    let mut m: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        m.entry(r.group).or_default().push(i);
    }
    m
}

/// Score `predicted` against `truth`, line by line (same length and order).
/// Returns `None` when the lengths differ or there are no lines.
pub fn score(predicted: &[Parsed<'_>], truth: &[Parsed<'_>]) -> Option<ParseScores> {
    if predicted.len() != truth.len() || predicted.is_empty() {
        return None;
    }
    let predicted_groups = groups(predicted);
    let true_groups = groups(truth);

    let mut grouped_lines = 0usize;
    let mut correct_groups = 0usize;
    let mut correct_templates = 0usize;
    for lines in predicted_groups.values() {
        let first = lines[0];
        let true_group = &true_groups[truth[first].group];
        if true_group == lines {
            grouped_lines += lines.len();
            correct_groups += 1;
            if normalise(predicted[first].template) == normalise(truth[first].template) {
                correct_templates += 1;
            }
        }
    }
    let parsed_lines = predicted
        .iter()
        .zip(truth)
        .filter(|(p, t)| normalise(p.template) == normalise(t.template))
        .count();
    let n = predicted.len() as f64;
    Some(ParseScores {
        grouping_accuracy: grouped_lines as f64 / n,
        parsing_accuracy: parsed_lines as f64 / n,
        f1_grouping: f1(correct_groups, predicted_groups.len(), true_groups.len()),
        f1_template: f1(correct_templates, predicted_groups.len(), true_groups.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows<'a>(v: &[(&'a str, &'a str)]) -> Vec<Parsed<'a>> {
        v.iter()
            .map(|&(group, template)| Parsed { group, template })
            .collect()
    }

    #[test]
    fn perfect_parse_scores_one_everywhere() {
        let t = rows(&[("A", "open <*>"), ("B", "close <*>"), ("A", "open <*>")]);
        let p = rows(&[("1", "open <*>"), ("2", "close <*>"), ("1", "open <*>")]);
        let s = score(&p, &t).unwrap();
        assert_eq!(
            s,
            ParseScores {
                grouping_accuracy: 1.0,
                parsing_accuracy: 1.0,
                f1_grouping: 1.0,
                f1_template: 1.0
            }
        );
    }

    #[test]
    fn hand_computed_mixed_case() {
        // Truth: A = {0, 1}, B = {2}, C = {3}.
        // Predicted: 1 = {0, 1} (right group, wrong text), 2 = {2, 3} (merges B and C).
        let t = rows(&[("A", "a <*>"), ("A", "a <*>"), ("B", "b x"), ("C", "c y")]);
        let p = rows(&[
            ("1", "a b"),
            ("1", "a b"),
            ("2", "<*> <*>"),
            ("2", "<*> <*>"),
        ]);
        let s = score(&p, &t).unwrap();
        assert_eq!(s.grouping_accuracy, 0.5); // lines 0 and 1
        assert_eq!(s.parsing_accuracy, 0.0);
        // FGA: 1 correct group of 2 predicted, 3 true: P = 1/2, R = 1/3, F1 = 0.4.
        assert!((s.f1_grouping - 0.4).abs() < 1e-12);
        assert_eq!(s.f1_template, 0.0);
    }

    #[test]
    fn whitespace_differences_do_not_count() {
        let t = rows(&[("A", "a  <*>")]);
        let p = rows(&[("1", "a <*> ")]);
        assert_eq!(score(&p, &t).unwrap().parsing_accuracy, 1.0);
    }

    #[test]
    fn mismatched_or_empty_inputs_give_none() {
        assert!(score(&[], &[]).is_none());
        let t = rows(&[("A", "a")]);
        assert!(score(&[], &t).is_none());
    }
}
