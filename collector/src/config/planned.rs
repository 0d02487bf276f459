//! `maintenance:` — recurring maintenance windows and their scopes.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    pub(super) name: String,
    pub(super) scope: ScopeSpec,
    pub(super) schedule: RawSchedule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) timezone: String,
    #[serde(default)]
    pub(super) weekly: Vec<RawWeekly>,
    #[serde(default)]
    pub(super) monthly: Vec<RawMonthly>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeekly {
    pub(super) day: String,
    pub(super) start: String,
    #[serde(with = "humantime_serde")]
    pub(super) duration: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMonthly {
    pub(super) day: u32,
    pub(super) start: String,
    #[serde(with = "humantime_serde")]
    pub(super) duration: Duration,
}

pub(super) fn maintenance(
    raw: &RawMaintenance,
    path: &str,
    diag: &mut Diagnostics,
) -> Option<Maintenance> {
    let scope = match Scope::new(raw.scope.clone()) {
        Ok(s) => Some(s),
        Err((field, msg)) => {
            diag.push(&format!("{path}.{field}"), msg);
            None
        }
    };
    let timezone = match raw.schedule.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            diag.push(
                &format!("{path}.schedule.timezone"),
                format!(
                    "'{}' is not an IANA time zone (like Europe/Berlin or UTC)",
                    raw.schedule.timezone
                ),
            );
            None
        }
    };
    let mut slots = Vec::new();
    let start_time = |s: &str, at: &str, diag: &mut Diagnostics| {
        let t = chrono::NaiveTime::parse_from_str(s, "%H:%M");
        if t.is_err() {
            diag.push(
                at,
                format!("'{s}' is not a time like 02:00 (24-hour HH:MM)"),
            );
        }
        t.ok()
    };
    let duration = |d: Duration, at: &str, diag: &mut Diagnostics| {
        let ok = !d.is_zero() && d <= Duration::from_secs(7 * 86_400);
        if !ok {
            diag.push(at, "must be more than 0 and at most 7 days");
        }
        ok
    };
    for (i, w) in raw.schedule.weekly.iter().enumerate() {
        let at = format!("{path}.schedule.weekly[{i}]");
        let day = match w.day.to_ascii_lowercase().parse::<chrono::Weekday>() {
            Ok(d) => Some(d),
            Err(_) => {
                diag.push(
                    &format!("{at}.day"),
                    format!("'{}' is not a weekday (mon, tue, … sun)", w.day),
                );
                None
            }
        };
        let start = start_time(&w.start, &format!("{at}.start"), diag);
        let ok = duration(w.duration, &format!("{at}.duration"), diag);
        if let (Some(day), Some(start), true) = (day, start, ok) {
            slots.push(Slot {
                when: Recurrence::Weekly(day),
                start,
                duration: w.duration,
            });
        }
    }
    for (i, m) in raw.schedule.monthly.iter().enumerate() {
        let at = format!("{path}.schedule.monthly[{i}]");
        if !(1..=28).contains(&m.day) {
            diag.push(&format!("{at}.day"), "must be 1–28 (a day every month has)");
        }
        let start = start_time(&m.start, &format!("{at}.start"), diag);
        let ok = duration(m.duration, &format!("{at}.duration"), diag);
        if let (Some(start), true, true) = (start, ok, (1..=28).contains(&m.day)) {
            slots.push(Slot {
                when: Recurrence::Monthly(m.day),
                start,
                duration: m.duration,
            });
        }
    }
    if raw.schedule.weekly.is_empty() && raw.schedule.monthly.is_empty() {
        diag.push(
            &format!("{path}.schedule"),
            "give `weekly` and/or `monthly` slots",
        );
    }
    Some(Maintenance {
        name: raw.name.clone(),
        scope: scope?,
        timezone: timezone?,
        slots,
    })
}
