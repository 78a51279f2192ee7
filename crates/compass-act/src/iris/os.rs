//! The OS agent: how many huge pages the instance's shared memory needs, and the
//! `set_kernel_param vm.nr_hugepages` command that provides them (run, read back and
//! rolled back by the runner like any other action).
//!
//! IRIS allocates its shared memory at start-up from the `[config]` section of the CPF:
//! `globals` (MB of database cache per block size, a comma list), `routines` (MB of
//! routine cache, one number or a comma list), `gmheap` (KB of generic heap) and
//! `jrnbufs` (MB of journal buffers). The estimate adds InterSystems' documented
//! control-block overheads (7.5 % on global buffers, 2 % on routine buffers) and a
//! fixed allowance for the rest. When the instance has started once, `messages.log`
//! says what it really allocated (`Allocated 1139MB shared memory`) and that figure is
//! used instead.

use serde::Serialize;

use super::cpf::Cpf;
use super::messages::IrisMessage;
use crate::action::{Action, Command, Priority};

/// Journal buffers when the CPF does not set `jrnbufs` (MB).
const DEFAULT_JRNBUFS_MB: f64 = 64.0;
/// Shared memory outside the caches and the heap (MB): process tables, lock table
/// headers, ECP and mirroring structures.
const FIXED_OVERHEAD_MB: f64 = 32.0;

/// Where the shared-memory size came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Computed from the CPF.
    Estimate {
        globals_mb: f64,
        routines_mb: f64,
        gmheap_mb: f64,
        jrnbufs_mb: f64,
    },
    /// Reported by the instance in `messages.log` (the line number).
    Reported { line: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HugePages {
    pub shared_memory_mb: u64,
    pub page_kb: u64,
    /// Pages needed (rounded up, plus one for alignment).
    pub pages: u64,
    pub basis: Basis,
}

fn mb_list(cpf: &Cpf, key: &str) -> Result<f64, String> {
    let Some(v) = cpf.get("config", key) else {
        return Ok(0.0);
    };
    v.split(',')
        .map(|p| {
            let p = p.trim();
            p.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("[config] {key}={v}: `{p}` is not a size in MB"))
        })
        .sum()
}

/// The huge pages the shared memory needs, from the instance's own report when the log
/// has one (the last start-up wins), else the estimate from the CPF.
pub fn huge_pages(cpf: &Cpf, log: &[IrisMessage], page_kb: u64) -> Result<HugePages, String> {
    if page_kb == 0 {
        return Err("the huge page size is 0 kB".into());
    }
    let reported = log.iter().rev().find_map(|m| {
        let rest = m.message.split("Allocated ").nth(1)?;
        let (mb, _) = rest.split_once("MB shared memory")?;
        mb.trim().parse::<u64>().ok().map(|mb| (mb, m.line))
    });
    let (shared_memory_mb, basis) = match reported {
        Some((mb, line)) => (mb, Basis::Reported { line }),
        None => {
            let globals_mb = mb_list(cpf, "globals")?;
            let routines_mb = mb_list(cpf, "routines")?;
            let gmheap_kb = mb_list(cpf, "gmheap")?;
            let jrnbufs_mb = match cpf.get("config", "jrnbufs") {
                Some(_) => mb_list(cpf, "jrnbufs")?,
                None => DEFAULT_JRNBUFS_MB,
            };
            if globals_mb == 0.0 {
                return Err(
                    "[config] globals is missing or 0: IRIS sizes the cache itself at start-up, \
                     so the need is known only from its `Allocated …MB shared memory` message"
                        .into(),
                );
            }
            let gmheap_mb = gmheap_kb / 1024.0;
            let total = globals_mb * 1.075
                + routines_mb * 1.02
                + gmheap_mb
                + jrnbufs_mb
                + FIXED_OVERHEAD_MB;
            (
                total.ceil() as u64,
                Basis::Estimate {
                    globals_mb,
                    routines_mb,
                    gmheap_mb,
                    jrnbufs_mb,
                },
            )
        }
    };
    let pages = (shared_memory_mb * 1024).div_ceil(page_kb) + 1;
    Ok(HugePages {
        shared_memory_mb,
        page_kb,
        pages,
        basis,
    })
}

/// The huge page size from `/proc/meminfo` text (`Hugepagesize:    2048 kB`).
pub fn page_size_kb(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let v = l.strip_prefix("Hugepagesize:")?;
        v.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The command that sets `vm.nr_hugepages` to what the instance needs.
pub fn command(id: &str, incident: Option<String>, need: &HugePages) -> Command {
    let basis = match &need.basis {
        Basis::Reported { line } => format!("as the instance reported at line {line}"),
        Basis::Estimate { .. } => "estimated from the CPF".to_string(),
    };
    Command {
        id: id.to_string(),
        incident,
        priority: Priority::High,
        action: Action::SetKernelParam {
            param: "vm.nr_hugepages".into(),
            value: need.pages.to_string(),
        },
        reason: format!(
            "{} MB of shared memory ({basis}) needs {} huge pages of {} kB",
            need.shared_memory_mb, need.pages, need.page_kb
        ),
        validate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::messages::parse;
    use chrono::FixedOffset;

    fn cpf(config: &str) -> Cpf {
        Cpf::parse(&format!("[config]\n{config}\n"), "iris.cpf").unwrap()
    }

    #[test]
    fn estimates_from_the_cpf() {
        let c = cpf("globals=0,0,1024,0,0,0\nroutines=256\ngmheap=102400\njrnbufs=64");
        let h = huge_pages(&c, &[], 2048).unwrap();
        // 1024*1.075 + 256*1.02 + 100 + 64 + 32 = 1557.92 -> 1558 MB -> 779 pages + 1
        assert_eq!(h.shared_memory_mb, 1558);
        assert_eq!(h.pages, 780);
        assert!(matches!(h.basis, Basis::Estimate { .. }));
    }

    #[test]
    fn the_instance_report_wins_and_the_last_start_counts() {
        let log = parse(
            "03/14/24-09:26:53:011 (1) 0 [Generic.Event] Allocated 1139MB shared memory\n\
             03/15/24-09:26:53:011 (2) 0 [Generic.Event] Allocated 2200MB shared memory using Huge Pages\n",
            FixedOffset::east_opt(0).unwrap(),
        );
        let h = huge_pages(&cpf("globals=0,0,64,0,0,0"), &log.messages, 2048).unwrap();
        assert_eq!(h.shared_memory_mb, 2200);
        assert_eq!(h.pages, 1101);
        assert_eq!(h.basis, Basis::Reported { line: 2 });
        let cmd = command("hp-1", None, &h);
        assert_eq!(
            cmd.action,
            Action::SetKernelParam {
                param: "vm.nr_hugepages".into(),
                value: "1101".into()
            }
        );
        assert!(cmd.reason.contains("line 2"), "{}", cmd.reason);
    }

    #[test]
    fn bad_or_missing_sizes_are_named() {
        let e = huge_pages(&cpf("globals=0,0,lots"), &[], 2048).unwrap_err();
        assert!(e.contains("`lots`"), "{e}");
        let e = huge_pages(&cpf("routines=64"), &[], 2048).unwrap_err();
        assert!(e.contains("globals is missing"), "{e}");
        assert_eq!(
            page_size_kb("MemTotal: 1 kB\nHugepagesize:       2048 kB\n"),
            Some(2048)
        );
        assert_eq!(page_size_kb("MemTotal: 1 kB\n"), None);
    }
}
