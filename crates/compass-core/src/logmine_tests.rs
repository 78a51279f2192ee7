//! Data-driven tests of the template miner: `testdata/cases/logmine/<case>/input.log`
//! is mined line by line and the templates with counts, in creation order, must equal
//! `expected.txt` (`count<TAB>template` per line).

use super::*;
use std::path::Path;

fn check(input: &str, expected: &str) -> Result<(), String> {
    let mut miner = TemplateMiner::default();
    for line in input.lines() {
        miner.add(line);
    }
    let got: Vec<String> = miner
        .templates()
        .map(|(_, t, n)| format!("{n}\t{t}"))
        .collect();
    let want: Vec<String> = expected.lines().map(str::to_string).collect();
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "got:\n{}\nwant:\n{}",
            got.join("\n"),
            want.join("\n")
        ))
    }
}

#[test]
fn testdata_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cases/logmine");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4);
    let mut failures = Vec::new();
    for case in cases {
        let input = std::fs::read_to_string(case.join("input.log")).unwrap();
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        if let Err(e) = check(&input, &expected) {
            failures.push(format!("{}:\n{e}", case.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn ids_are_stable_and_templates_generalise() {
    let mut m = TemplateMiner::default();
    let a = m.add("user alice logged in from web");
    let b = m.add("user bob logged in from web");
    assert_eq!(a, b);
    assert_eq!(m.template(a), "user <*> logged in from web");
    assert_eq!(m.count(a), 2);
    let c = m.add("disk full on volume data");
    assert_ne!(a, c);
    assert_eq!(m.len(), 2);
    assert_eq!(m.lines(), 3);
    assert_eq!(m.count(99), 0);
    assert_eq!(m.match_message("user carol logged in from web"), Some(a));
    assert_eq!(m.match_message("something else entirely here"), None);
    assert_eq!(m.lines(), 3, "matching does not mine");
}

#[test]
fn mining_is_deterministic() {
    let lines: Vec<String> = (0..2000)
        .map(|i| match i % 4 {
            0 => format!("GET /api/items/{i} 200 {}ms", i % 97),
            1 => format!("worker {} finished job-{} in {}s", i % 7, i, i % 13),
            2 => format!("user u{} added item {} to cart", i % 50, i % 11),
            _ => format!("ERROR timeout calling svc{} after {}ms", i % 3, 1000 + i),
        })
        .collect();
    let run = || {
        let mut m = TemplateMiner::default();
        let ids: Vec<TemplateId> = lines.iter().map(|l| m.add(l)).collect();
        let t: Vec<(TemplateId, String, u64)> = m
            .templates()
            .map(|(i, t, n)| (i, t.to_string(), n))
            .collect();
        (ids, t)
    };
    let (ids1, t1) = run();
    let (ids2, t2) = run();
    assert_eq!(ids1, ids2);
    assert_eq!(t1, t2);
    assert!(t1.len() <= 8, "{t1:?}");
}

#[test]
fn overflowing_children_share_the_wildcard_branch() {
    let mut m = TemplateMiner::new(MinerConfig {
        max_children: 3,
        ..MinerConfig::default()
    });
    for w in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        m.add(&format!("{w} started ok"));
    }
    // Two distinct first tokens fit, the rest go through the wildcard child and merge.
    assert!(m.len() <= 3, "{:?}", m.templates().collect::<Vec<_>>());
    let long = "x ".repeat(500);
    let id = m.add(&long);
    assert_eq!(
        m.template(id).split(' ').count(),
        MinerConfig::default().max_tokens
    );
}
