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
        // Low enough that messages differing only in the first word merge.
        similarity: 0.5,
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

/// Split one CSV line (RFC 4180 quoting, no embedded newlines).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// Grouping accuracy (Zhu et al., ICSE-SEIP'19): the share of messages whose mined
/// group holds exactly the messages of their true group.
fn grouping_accuracy(truth: &[String], mined: &[TemplateId]) -> f64 {
    use std::collections::HashMap;
    let mut by_truth: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_mined: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (i, (t, m)) in truth.iter().zip(mined).enumerate() {
        by_truth.entry(t).or_default().push(i);
        by_mined.entry(*m).or_default().push(i);
    }
    let right: usize = by_mined
        .values()
        .filter(|members| by_truth[truth[members[0]].as_str()] == **members)
        .map(Vec::len)
        .sum();
    right as f64 / truth.len().max(1) as f64
}

/// Grouping accuracy on the Loghub 2k samples (`shared/data/loghub-corrected`), for
/// tuning: `cargo test -p compass-core --release loghub -- --ignored --nocapture`.
#[test]
#[ignore = "needs shared/data/loghub-corrected beside the repository"]
fn loghub_grouping_accuracy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/loghub-corrected");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("loghub data")
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut total = 0.0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let Some(csv) = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.to_string_lossy().ends_with("_structured.csv")
                    || p.to_string_lossy().ends_with("structured_corrected.csv")
            })
        else {
            continue;
        };
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut lines = text.lines();
        let header = csv_fields(lines.next().unwrap());
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        let (content, event) = (col("Content"), col("EventId"));
        let similarity = std::env::var("LOGHUB_SIM")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MinerConfig::default().similarity);
        let mut miner = TemplateMiner::new(MinerConfig {
            similarity,
            ..MinerConfig::default()
        });
        let mut truth = Vec::new();
        let mut ids = Vec::new();
        for l in lines {
            let f = csv_fields(l);
            ids.push(miner.add(&f[content]));
            truth.push(f[event].clone());
        }
        // Templates may generalise after a message was mined: map to final groups by
        // re-matching is not needed, ids are stable.
        let ga = grouping_accuracy(&truth, &ids);
        total += ga;
        if std::env::var("LOGHUB_SHOW").is_ok_and(|v| v == name) {
            for (_, t, n) in miner.templates().take(40) {
                println!("   {n:>5} {t}");
            }
        }
        println!(
            "{name:<12} GA {ga:.3} ({} templates, {} true)",
            miner.len(),
            truth.iter().collect::<std::collections::HashSet<_>>().len()
        );
    }
    let mean = total / dirs.len() as f64;
    println!("mean GA {mean:.3}");
    // A regression guard at the level measured when the miner was written (0.82);
    // issue 3's `compass eval loghub` is where this is scored properly.
    assert!(mean >= 0.80, "mean grouping accuracy fell to {mean:.3}");
}

#[test]
fn merged_tokens_keep_their_structure() {
    let mut m = TemplateMiner::default();
    let line = |host: &str, user: &str| {
        format!(
            "authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={host} user={user}"
        )
    };
    let template = |user: &str| {
        format!(
            "authentication failure; logname= uid=<*> euid=<*> tty=ssh ruser= rhost=<*> user={user}"
        )
    };
    let a = m.add(&line("10.0.0.1", "root"));
    assert_eq!(m.template(a), template("root"), "numbers masked, keys kept");
    // `alpha.example.org` fits the pattern `rhost=<*>`, so only the user differs.
    assert_eq!(m.add(&line("alpha.example.org", "guest")), a);
    assert_eq!(m.template(a), template("<*>"));
    assert_eq!(m.match_message(&line("beta", "admin")), Some(a));
    assert_eq!(
        m.match_message(
            "authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost= user=x"
        ),
        None
    );
    let c = m.add("session opened for user news by (uid=0)");
    let d = m.add("session opened for user cyrus by (uid=0)");
    assert_eq!(c, d);
    assert_eq!(m.template(c), "session opened for user <*> by (uid=<*>)");
}

#[test]
fn constant_words_that_differ_split_templates() {
    let mut m = TemplateMiner::default();
    let a = m.add("cupsd shutdown succeeded");
    let b = m.add("cupsd startup succeeded");
    assert_ne!(a, b, "one differing word in three is a different event");
    let c = m.add("Failed to get next element [HRESULT = 0x800f080d - E_ITEM]");
    let d = m.add("Failed to internally open package. [HRESULT = 0x800f0805 - E_PACKAGE]");
    assert_ne!(c, d);
}

#[test]
fn timestamps_inside_messages_are_variables() {
    let mut m = TemplateMiner::default();
    let a = m.add("connection from 10.1.2.3 () at Fri Jun 17 07:07:00 2005");
    let b = m.add("connection from 10.9.8.7 () at Sat Jul 2 21:15:01 2005");
    assert_eq!(a, b);
    assert_eq!(
        m.template(a),
        "connection from <*> () at <*> <*> <*> <*>:<*>:<*> <*>"
    );
}
