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
    let mut slots = weekly(&raw.schedule.weekly, path, diag);
    slots.extend(monthly(&raw.schedule.monthly, path, diag));
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

/// `schedule.weekly`: a weekday, a start time and a duration each.
fn weekly(raw: &[RawWeekly], path: &str, diag: &mut Diagnostics) -> Vec<Slot> {
    let mut slots = Vec::new();
    for (i, w) in raw.iter().enumerate() {
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
        let ok = slot_duration(w.duration, &format!("{at}.duration"), diag);
        if let (Some(day), Some(start), true) = (day, start, ok) {
            slots.push(Slot {
                when: Recurrence::Weekly(day),
                start,
                duration: w.duration,
            });
        }
    }
    slots
}

/// `schedule.monthly`: a day of the month (1–28), a start time and a duration each.
fn monthly(raw: &[RawMonthly], path: &str, diag: &mut Diagnostics) -> Vec<Slot> {
    let mut slots = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let at = format!("{path}.schedule.monthly[{i}]");
        if !(1..=28).contains(&m.day) {
            diag.push(&format!("{at}.day"), "must be 1–28 (a day every month has)");
        }
        let start = start_time(&m.start, &format!("{at}.start"), diag);
        let ok = slot_duration(m.duration, &format!("{at}.duration"), diag);
        if let (Some(start), true, true) = (start, ok, (1..=28).contains(&m.day)) {
            slots.push(Slot {
                when: Recurrence::Monthly(m.day),
                start,
                duration: m.duration,
            });
        }
    }
    slots
}

fn start_time(s: &str, at: &str, diag: &mut Diagnostics) -> Option<chrono::NaiveTime> {
    let t = chrono::NaiveTime::parse_from_str(s, "%H:%M");
    if t.is_err() {
        diag.push(
            at,
            format!("'{s}' is not a time like 02:00 (24-hour HH:MM)"),
        );
    }
    t.ok()
}

fn slot_duration(d: Duration, at: &str, diag: &mut Diagnostics) -> bool {
    let ok = !d.is_zero() && d <= Duration::from_secs(7 * 86_400);
    if !ok {
        diag.push(at, "must be more than 0 and at most 7 days");
    }
    ok
}
