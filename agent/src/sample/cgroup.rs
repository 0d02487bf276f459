//! The agent's own cgroup, where container limits are read: cgroup v2, or
//! v1's `memory`, `cpu` and `cpuacct` controllers, each found from
//! `/proc/self/cgroup` and the cgroup mounts in `/proc/self/mountinfo` (so
//! a container without a cgroup namespace, whose mount root is its own
//! cgroup, resolves too).
//!
//! A limit is the tightest one on the way from the agent's cgroup up to the
//! mount's root: a parent's limit binds its children. "No limit" (`max` in
//! v2, `PAGE_COUNTER_MAX` rounded to a page in v1) is None, never a number.

use std::path::{Path, PathBuf};

use super::Reader;

/// One controller's directories: the agent's cgroup, and the top of the
/// mounted hierarchy (where walking up stops).
#[derive(Debug, Clone, PartialEq)]
struct Dir {
    v2: bool,
    own: PathBuf,
    top: PathBuf,
}

impl Dir {
    /// The agent's cgroup first, then each parent up to the mount.
    fn ancestors(&self) -> impl Iterator<Item = &Path> {
        self.own
            .ancestors()
            .take_while(move |p| p.starts_with(&self.top))
    }
}

/// Where the agent's memory and CPU limits and usage are read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Cgroup {
    memory: Option<Dir>,
    cpu: Option<Dir>,
    cpuacct: Option<Dir>,
}

/// A memory limit and what counts against it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MemoryLimit {
    pub(crate) limit: f64,
    pub(crate) usage: f64,
    pub(crate) inactive_file: f64,
}

impl MemoryLimit {
    /// limit − (usage − inactive file cache): the working-set convention of
    /// cAdvisor and kubelet, so reclaimable page cache is not "used".
    pub(crate) fn available(&self) -> f64 {
        let working_set = (self.usage - self.inactive_file).max(0.0);
        (self.limit - working_set).max(0.0)
    }
}

/// A CPU quota in cores, and the CPU time the cgroup has used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuLimit {
    pub(crate) cores: f64,
    pub(crate) usage_s: Option<f64>,
}

/// Anything this large is v1's "no limit" (`PAGE_COUNTER_MAX` in bytes).
const UNLIMITED: f64 = (1u64 << 60) as f64;

impl Cgroup {
    /// The agent's cgroup as this process sees it; controllers that cannot
    /// be found are None (and report no limit).
    pub(crate) fn of_self() -> Cgroup {
        let mut r = Reader::default();
        let proc_cgroup = r.read("/proc/self/cgroup").unwrap_or_default().to_string();
        let mountinfo = r
            .read("/proc/self/mountinfo")
            .unwrap_or_default()
            .to_string();
        let mut find = |controller: &str| {
            let dir = resolve(&proc_cgroup, &mountinfo, controller)?;
            // In v2 a controller exists for a cgroup only when enabled for it.
            if dir.v2 {
                let listed = r.read(dir.own.join("cgroup.controllers"))?;
                if !listed.split_whitespace().any(|c| c == controller) {
                    return None;
                }
            }
            Some(dir)
        };
        Cgroup {
            memory: find("memory"),
            cpu: find("cpu"),
            // v2 accounts CPU time in `cpu.stat` of the `cpu` controller.
            cpuacct: resolve(&proc_cgroup, &mountinfo, "cpuacct").filter(|d| !d.v2),
        }
    }

    /// The tightest memory limit over the agent's cgroup and its parents,
    /// with that cgroup's usage; None without a limit.
    pub(crate) fn memory(&self, r: &mut Reader) -> Option<MemoryLimit> {
        let dir = self.memory.as_ref()?;
        let limit_file = if dir.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        let (limit, at) = dir
            .ancestors()
            .filter_map(|p| {
                let limit = parse_limit(r.read(p.join(limit_file))?)?;
                Some((limit, p.to_path_buf()))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))?;
        let usage_file = if dir.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        let usage = r.read(at.join(usage_file))?.trim().parse::<f64>().ok()?;
        // v1's `total_inactive_file` counts the children, as usage does.
        let key = if dir.v2 {
            "inactive_file"
        } else {
            "total_inactive_file"
        };
        let inactive_file = r
            .read(at.join("memory.stat"))
            .and_then(|t| stat_value(t, key))
            .unwrap_or(0.0);
        Some(MemoryLimit {
            limit,
            usage,
            inactive_file,
        })
    }

    /// The tightest CPU quota over the agent's cgroup and its parents, and
    /// the CPU time used by the agent's cgroup; None without a quota.
    pub(crate) fn cpu(&self, r: &mut Reader) -> Option<CpuLimit> {
        let dir = self.cpu.as_ref()?;
        let cores = dir
            .ancestors()
            .filter_map(|p| {
                if dir.v2 {
                    parse_cpu_max(r.read(p.join("cpu.max"))?)
                } else {
                    let quota = r.read(p.join("cpu.cfs_quota_us"))?.trim().parse::<f64>();
                    let period = r.read(p.join("cpu.cfs_period_us"))?.trim().parse::<f64>();
                    match (quota, period) {
                        (Ok(q), Ok(p)) if q > 0.0 && p > 0.0 => Some(q / p),
                        _ => None,
                    }
                }
            })
            .min_by(f64::total_cmp)?;
        let usage_s = if dir.v2 {
            r.read(dir.own.join("cpu.stat"))
                .and_then(|t| stat_value(t, "usage_usec"))
                .map(|us| us / 1e6)
        } else {
            let acct = self.cpuacct.as_ref().unwrap_or(dir);
            r.read(acct.own.join("cpuacct.usage"))
                .and_then(|t| t.trim().parse::<f64>().ok())
                .map(|ns| ns / 1e9)
        };
        Some(CpuLimit { cores, usage_s })
    }
}

/// A memory limit file's value: `max` (v2) or v1's huge number mean none.
pub(super) fn parse_limit(text: &str) -> Option<f64> {
    let v = text.trim().parse::<f64>().ok()?;
    (v > 0.0 && v < UNLIMITED).then_some(v)
}

/// Parses cgroup v2 `cpu.max` (`max 100000` or `50000 100000`).
pub(super) fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut w = text.split_whitespace();
    let quota = w.next()?.parse::<f64>().ok()?;
    let period = w.next()?.parse::<f64>().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// The value of `key` in a `key value` per line file (`memory.stat`, `cpu.stat`).
pub(super) fn stat_value(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Where `controller` of the agent's cgroup lives, from `/proc/self/cgroup`
/// and `/proc/self/mountinfo`: a v1 hierarchy listing the controller, else
/// the v2 one (whose controllers the caller checks).
fn resolve(proc_cgroup: &str, mountinfo: &str, controller: &str) -> Option<Dir> {
    let mut v2_path = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2_path = Some(path);
        } else if controllers.split(',').any(|c| c == controller) {
            let mount = super::filesystems::mounts(mountinfo).find(|m| {
                m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == controller)
            })?;
            return Some(join(mount.mountpoint, mount.root, path, false));
        }
    }
    let path = v2_path?;
    let mount = super::filesystems::mounts(mountinfo).find(|m| m.fstype == "cgroup2")?;
    Some(join(mount.mountpoint, mount.root, path, true))
}

/// The directory of cgroup `path` in a hierarchy mounted at `mountpoint`
/// from `root` (a container's view starts at its own cgroup).
fn join(mountpoint: String, root: String, path: &str, v2: bool) -> Dir {
    let top = PathBuf::from(mountpoint);
    let rel = Path::new(path)
        .strip_prefix(&root)
        .unwrap_or(Path::new(path))
        .to_path_buf();
    let rel = rel.strip_prefix("/").unwrap_or(&rel);
    Dir {
        v2,
        own: top.join(rel),
        top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_v1_controllers_under_their_mount_root() {
        let cg = "4:memory:/docker/abc/inner\n1:cpu:/x\n0::/\n";
        let m = resolve(cg, MOUNTINFO, "memory").unwrap();
        assert_eq!(m.own, Path::new("/sys/fs/cgroup/memory/inner"));
        assert_eq!(
            m.ancestors().collect::<Vec<_>>(),
            [
                Path::new("/sys/fs/cgroup/memory/inner"),
                Path::new("/sys/fs/cgroup/memory")
            ]
        );
        assert!(!m.v2);
        let c = resolve(cg, MOUNTINFO, "cpu").unwrap();
        assert_eq!(c.own, Path::new("/sys/fs/cgroup/cpu/x"));
        // Not a v1 controller here: the v2 hierarchy is the candidate.
        let io = resolve(cg, MOUNTINFO, "io").unwrap();
        assert!(io.v2);
        assert_eq!(io.own, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn limits_mean_a_number_or_none() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("0"), None);
        assert_eq!(parse_limit("104857600\n"), Some(104857600.0));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(
            stat_value("active_file 5\ninactive_file 7\n", "inactive_file"),
            Some(7.0)
        );
        assert_eq!(stat_value("total_inactive_file 7\n", "inactive_file"), None);
    }

    #[test]
    fn available_is_limit_minus_working_set() {
        let m = MemoryLimit {
            limit: 100.0,
            usage: 90.0,
            inactive_file: 60.0,
        };
        assert_eq!(m.available(), 70.0);
        // Counters read a moment apart can cross; never below zero.
        let m = MemoryLimit {
            limit: 100.0,
            usage: 10.0,
            inactive_file: 20.0,
        };
        assert_eq!(m.available(), 100.0);
        let m = MemoryLimit {
            limit: 100.0,
            usage: 300.0,
            inactive_file: 0.0,
        };
        assert_eq!(m.available(), 0.0);
    }

    #[test]
    fn a_parent_limit_binds_and_the_tightest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().to_path_buf();
        let own = top.join("a/b");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(top.join("a/memory.limit_in_bytes"), "1000\n").unwrap();
        std::fs::write(top.join("a/memory.usage_in_bytes"), "800\n").unwrap();
        std::fs::write(top.join("a/memory.stat"), "total_inactive_file 300\n").unwrap();
        std::fs::write(own.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        let cg = Cgroup {
            memory: Some(Dir {
                v2: false,
                own,
                top,
            }),
            ..Cgroup::default()
        };
        let m = cg.memory(&mut Reader::default()).unwrap();
        assert_eq!((m.limit, m.usage, m.inactive_file), (1000.0, 800.0, 300.0));
        assert_eq!(m.available(), 500.0);
    }
}
