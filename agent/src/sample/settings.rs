//! `host_metrics:` in the agent configuration: the raw keys as written, and
//! the validated settings the sources run on (each filter compiled once).

use std::time::Duration;

use serde::Deserialize;
use vedette_yaml::Diagnostics;

/// Filesystem types that are not real storage: excluded by default.
pub(crate) const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Host sampling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HostMetrics {
    /// Deadline of each source (cpu, memory, filesystems, …) per sample.
    pub timeout: Duration,
    /// Report memory and CPU against the container's cgroup limits.
    pub cgroup: CgroupMode,
    pub mountpoints: Filter,
    pub fstypes: Filter,
    pub devices: Filter,
    pub interfaces: Filter,
    /// Block devices of `disk_*` samples.
    pub disks: Filter,
    /// Units reported one by one (`systemd_unit_active`); None: none.
    pub systemd_units: Option<Filter>,
    /// How often systemd is asked.
    pub systemd_every: Duration,
}

/// Whether memory ratios use the cgroup's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// When the agent runs in a container (`/.dockerenv`, `/run/.containerenv`,
    /// or `container=` in its environment) and the cgroup has a limit.
    Auto,
    On,
    Off,
}

/// Include/exclude regular expressions over one name. A name passes when it
/// matches an include (or there are none) and no exclude.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<regex_lite::Regex>,
    exclude: Vec<regex_lite::Regex>,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        let pats =
            |v: &[regex_lite::Regex]| v.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>();
        pats(&self.include) == pats(&other.include) && pats(&self.exclude) == pats(&other.exclude)
    }
}

impl Filter {
    /// True when `name` is to be reported.
    pub fn allows(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(name)))
            && !self.exclude.iter().any(|r| r.is_match(name))
    }

    /// Compiles the patterns; `at` names the include and exclude keys.
    pub(crate) fn build(
        include: &[String],
        exclude: &[String],
        at: [&str; 2],
        diag: &mut Diagnostics,
    ) -> Filter {
        let mut compile = |pats: &[String], key: &str| {
            pats.iter()
                .enumerate()
                .filter_map(|(i, p)| match regex_lite::Regex::new(p) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        diag.push(
                            &format!("{key}[{i}]"),
                            format!("not a regular expression: {e}"),
                        );
                        None
                    }
                })
                .collect()
        };
        let include = compile(include, at[0]);
        let exclude = compile(exclude, at[1]);
        Filter { include, exclude }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHostMetrics {
    #[serde(default = "default_source_timeout", with = "humantime_serde")]
    timeout: Duration,
    #[serde(default = "default_cgroup")]
    cgroup: CgroupMode,
    #[serde(default)]
    filesystems: RawFilesystems,
    #[serde(default)]
    interfaces: RawInterfaces,
    #[serde(default)]
    disks: RawDisks,
    #[serde(default)]
    systemd: RawSystemd,
}

impl Default for RawHostMetrics {
    fn default() -> Self {
        RawHostMetrics {
            timeout: default_source_timeout(),
            cgroup: default_cgroup(),
            filesystems: RawFilesystems::default(),
            interfaces: RawInterfaces::default(),
            disks: RawDisks::default(),
            systemd: RawSystemd::default(),
        }
    }
}

fn default_source_timeout() -> Duration {
    Duration::from_secs(2)
}

fn default_cgroup() -> CgroupMode {
    CgroupMode::Auto
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilesystems {
    #[serde(default)]
    include_mountpoints: Vec<String>,
    #[serde(default = "default_exclude_mountpoints")]
    exclude_mountpoints: Vec<String>,
    #[serde(default)]
    include_fstypes: Vec<String>,
    #[serde(default = "default_exclude_fstypes")]
    exclude_fstypes: Vec<String>,
    #[serde(default)]
    include_devices: Vec<String>,
    #[serde(default)]
    exclude_devices: Vec<String>,
}

impl Default for RawFilesystems {
    fn default() -> Self {
        RawFilesystems {
            include_mountpoints: Vec::new(),
            exclude_mountpoints: default_exclude_mountpoints(),
            include_fstypes: Vec::new(),
            exclude_fstypes: default_exclude_fstypes(),
            include_devices: Vec::new(),
            exclude_devices: Vec::new(),
        }
    }
}

/// Kernel and container plumbing mounted from real filesystems.
pub(crate) fn default_exclude_mountpoints() -> Vec<String> {
    vec![
        "^/(dev|proc|sys)(/|$)".into(),
        "^/etc/(hostname|hosts|resolv\\.conf)$".into(),
    ]
}

/// One anchored pattern of every pseudo filesystem type.
pub(crate) fn default_exclude_fstypes() -> Vec<String> {
    vec![format!(
        "^({})$",
        PSEUDO_FILESYSTEMS
            .iter()
            .map(|f| f.replace('.', "\\."))
            .collect::<Vec<_>>()
            .join("|")
    )]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterfaces {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default = "default_exclude_interfaces")]
    exclude: Vec<String>,
}

impl Default for RawInterfaces {
    fn default() -> Self {
        RawInterfaces {
            include: Vec::new(),
            exclude: default_exclude_interfaces(),
        }
    }
}

/// Loopback and container veth pairs.
pub(crate) fn default_exclude_interfaces() -> Vec<String> {
    vec!["^lo$".into(), "^veth".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystemd {
    #[serde(default)]
    units: Vec<String>,
    #[serde(default = "default_systemd_every", with = "humantime_serde")]
    every: Duration,
}

impl Default for RawSystemd {
    fn default() -> Self {
        RawSystemd {
            units: Vec::new(),
            every: default_systemd_every(),
        }
    }
}

fn default_systemd_every() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisks {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default = "default_exclude_disks")]
    exclude: Vec<String>,
}

impl Default for RawDisks {
    fn default() -> Self {
        RawDisks {
            include: Vec::new(),
            exclude: default_exclude_disks(),
        }
    }
}

/// Partitions, RAM, loop and floppy devices: node_exporter's default.
pub(crate) fn default_exclude_disks() -> Vec<String> {
    vec!["^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$".into()]
}

/// Validates `host_metrics:` (a source's deadline is capped at `interval`:
/// it may never hold up a sample past the next one).
pub(crate) fn validate(
    raw: &RawHostMetrics,
    interval: Duration,
    diag: &mut Diagnostics,
) -> HostMetrics {
    let hm = raw;
    if hm.timeout < Duration::from_millis(10) {
        diag.push("host_metrics.timeout", "must be at least 10ms");
    }
    if hm.systemd.every < interval {
        diag.push(
            "host_metrics.systemd.every",
            format!(
                "must be at least the interval ({})",
                humantime::format_duration(interval)
            ),
        );
    }
    let fs = &hm.filesystems;
    HostMetrics {
        // A source may never hold up a sample past the next one.
        timeout: hm.timeout.min(interval),
        cgroup: hm.cgroup,
        mountpoints: Filter::build(
            &fs.include_mountpoints,
            &fs.exclude_mountpoints,
            [
                "host_metrics.filesystems.include_mountpoints",
                "host_metrics.filesystems.exclude_mountpoints",
            ],
            diag,
        ),
        fstypes: Filter::build(
            &fs.include_fstypes,
            &fs.exclude_fstypes,
            [
                "host_metrics.filesystems.include_fstypes",
                "host_metrics.filesystems.exclude_fstypes",
            ],
            diag,
        ),
        devices: Filter::build(
            &fs.include_devices,
            &fs.exclude_devices,
            [
                "host_metrics.filesystems.include_devices",
                "host_metrics.filesystems.exclude_devices",
            ],
            diag,
        ),
        interfaces: Filter::build(
            &hm.interfaces.include,
            &hm.interfaces.exclude,
            [
                "host_metrics.interfaces.include",
                "host_metrics.interfaces.exclude",
            ],
            diag,
        ),
        disks: Filter::build(
            &hm.disks.include,
            &hm.disks.exclude,
            ["host_metrics.disks.include", "host_metrics.disks.exclude"],
            diag,
        ),
        systemd_units: (!hm.systemd.units.is_empty()).then(|| {
            Filter::build(
                &hm.systemd.units,
                &[],
                ["host_metrics.systemd.units", "host_metrics.systemd.units"],
                diag,
            )
        }),
        systemd_every: hm.systemd.every,
    }
}
