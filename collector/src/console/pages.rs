//! The console's pages and actions. Each reads what it shows from the
//! store's reader connection or the state snapshot (bounded: pages, not
//! everything), and acts through the engine, as the API does.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::*;
use crate::api::{read, ApiError};
use crate::availability::Avail;
use crate::engine::ActionError;
use crate::incidents::{EventKind, Incident, IncidentState};
use crate::kpi::{HostQuery, HostReport};
use crate::store::{IncidentFilter, IncidentOrder};
use crate::views::{rfc3339, ChangeView, DeliveryView, IncidentView, ProblemView};

/// Live incidents shown on Now; the rest are a link away.
const NOW_ROWS: u64 = 100;
/// Incidents per page of `/incidents`.
const PAGE_ROWS: u64 = 50;
/// Hosts per page of `/hosts`.
const HOST_ROWS: usize = 100;
/// Incidents one bulk action may touch.
const MAX_BULK: usize = 500;
/// The longest filter text taken.
const MAX_FILTER_CHARS: usize = 200;

impl From<ApiError> for Deny {
    fn from(e: ApiError) -> Deny {
        match e {
            ApiError::BadRequest(m, _) => Deny::BadRequest(m),
            ApiError::Unauthorized(_) => Deny::Login,
            ApiError::Forbidden(m) => Deny::Forbidden(m),
            ApiError::NotFound(m) => Deny::NotFound(m),
            ApiError::Conflict(m) => Deny::Conflict(m),
            ApiError::Limited(l) => Deny::Unavailable(l.message),
            ApiError::Unavailable(m) | ApiError::Internal(m) => Deny::Unavailable(m),
        }
    }
}

impl From<ActionError> for Deny {
    fn from(e: ActionError) -> Deny {
        ApiError::from(e).into()
    }
}

/// Runs `f` for a page: refusals become the login redirect or an error page.
async fn serve<F, Fut>(uri: &str, f: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Response, Deny>>,
{
    match f().await {
        Ok(r) => r,
        Err(d) => d.answer(Some(uri)),
    }
}

/// Runs `f` for a post.
async fn act<F, Fut>(f: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Response, Deny>>,
{
    match f().await {
        Ok(r) => r,
        Err(d) => d.answer(None),
    }
}

/// "3h 12m" since `from_ms`.
fn duration_since(from_ms: i64, now_ms: i64) -> String {
    let s = (now_ms - from_ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn percent(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or("–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// An incident as the tables show it.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    view: IncidentView,
    duration: String,
    acknowledged_by: Option<String>,
}

fn row(i: Incident, now_ms: i64) -> Row {
    let acknowledged_by = i
        .events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Acknowledged)
        .map(|e| e.actor.clone());
    Row {
        duration: duration_since(i.started_at_ms, now_ms),
        acknowledged_by,
        view: i.into(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NowQuery {
    fragment: Option<String>,
}

/// `/`: what needs attention now.
pub(super) async fn now(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NowQuery>,
) -> Response {
    serve("/", || async {
        let viewer = viewer(&app, &headers)?;
        let now = now_ms();
        let store = read(&app, move |s| {
            let counts = s.live_counts()?;
            let page = s.incident_page(&IncidentFilter {
                live_only: true,
                order: IncidentOrder::Priority,
                limit: NOW_ROWS,
                ..Default::default()
            })?;
            let feed = s.recent_events(20)?;
            let changes = s.changes(false, 5)?;
            Ok((counts, page, feed, changes))
        });
        let metrics = Arc::clone(&app.metrics);
        let summary = tokio::task::spawn_blocking(move || metrics.summary(now));
        let (store, summary) = tokio::join!(store, summary);
        let (counts, page, feed, changes) = store?;
        let summary = summary.map_err(|e| Deny::Unavailable(e.to_string()))?;
        let (hosts, burning) = (summary.hosts, summary.burning);
        let open = |p: u8| {
            counts
                .iter()
                .filter(|(s, pr, _)| *s == IncidentState::Open && *pr == p)
                .map(|c| c.2)
                .sum::<u64>()
        };
        let acked: u64 = counts
            .iter()
            .filter(|(s, _, _)| *s == IncidentState::Acknowledged)
            .map(|c| c.2)
            .sum();
        let mut tiles: Vec<minijinja::Value> = (1..=5u8)
            .map(|p| minijinja::context! { label => format!("open P{p}"), value => open(p), href => format!("/incidents?state=open&priority={p}") })
            .collect();
        tiles.extend([
            minijinja::context! { label => "acknowledged", value => acked, href => "/incidents?state=acknowledged" },
            minijinja::context! { label => "hosts down", value => hosts.down, href => "/hosts?state=down" },
            minijinja::context! { label => "checks failing", value => hosts.checks_failing, href => "/hosts" },
            minijinja::context! { label => "services burning budget", value => burning, href => "/services" },
        ]);
        let (rows, total) = page;
        let shown = rows.len() as u64;
        let ctx = minijinja::context! {
            counts => tiles,
            incidents => rows.into_iter().map(|i| row(i, now)).collect::<Vec<_>>(),
            more => total.saturating_sub(shown),
            feed => feed.into_iter().map(|f| minijinja::context! {
                id => f.incident_id, host => f.host, rule => f.rule, priority => f.priority,
                at => rfc3339(f.event.at_ms), kind => f.event.kind.as_str().replace('_', " "),
                actor => f.event.actor, note => f.event.note,
            }).collect::<Vec<_>>(),
            changes => changes.into_iter().map(|c| ChangeView::new(c, now)).collect::<Vec<_>>(),
        };
        if q.fragment.as_deref() == Some("live") {
            let ctx = minijinja::context! { ..ctx, ..minijinja::context! { viewer => &viewer } };
            return Ok(render("now_live.html", ctx, StatusCode::OK, Some(&viewer)));
        }
        Ok(page_for("now.html", "Now", "/", &viewer, ctx))
    })
    .await
}

fn page_for(
    template: &str,
    title: &str,
    current: &str,
    viewer: &Viewer,
    ctx: minijinja::Value,
) -> Response {
    super::page(template, title, current, Some(viewer), ctx)
}

/// `/incidents` query: every field optional, as the filter form sends it.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub(super) struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    live: String,
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    done: String,
}

fn clip(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_FILTER_CHARS).collect())
}

/// A `YYYY-MM-DD` date as the start of that UTC day, in ms.
fn day_ms(s: &str) -> Result<Option<i64>, Deny> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
        })
        .map_err(|_| Deny::BadRequest(format!("'{s}' is not a date like 2026-11-30")))
}

impl ListQuery {
    fn filter(&self) -> Result<IncidentFilter, Deny> {
        let state = match self.state.as_str() {
            "" => None,
            s => Some(
                s.parse::<IncidentState>()
                    .map_err(|_| Deny::BadRequest(format!("unknown state '{s}'")))?,
            ),
        };
        let max_priority = match self.priority.as_str() {
            "" => None,
            p => Some(
                p.parse::<u8>()
                    .ok()
                    .filter(|p| (1..=5).contains(p))
                    .ok_or_else(|| Deny::BadRequest("priority must be 1 to 5".into()))?,
            ),
        };
        let order = match self.sort.as_str() {
            "" | "newest" => IncidentOrder::Newest,
            "oldest" => IncidentOrder::Oldest,
            "priority" => IncidentOrder::Priority,
            "host" => IncidentOrder::Host,
            s => return Err(Deny::BadRequest(format!("unknown sort '{s}'"))),
        };
        let page = self.page.unwrap_or(1).clamp(1, 1_000_000);
        Ok(IncidentFilter {
            state,
            max_priority,
            rule: clip(&self.rule),
            host_glob: clip(&self.host),
            text: clip(&self.q),
            from_ms: day_ms(&self.from)?,
            to_ms: day_ms(&self.to)?.map(|t| t + 86_400_000),
            live_only: self.live == "1",
            order,
            limit: PAGE_ROWS,
            offset: (page - 1) * PAGE_ROWS,
        })
    }

    /// This query's URL with another page.
    fn at_page(&self, page: u64) -> String {
        let mut q = self.clone();
        q.page = Some(page);
        q.done = String::new();
        format!("/incidents?{}", serde_urlencoded_pairs(&q))
    }
}

/// `key=value&…` of the non-empty fields of `q`.
fn serde_urlencoded_pairs(q: &ListQuery) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("state", &q.state),
        ("priority", &q.priority),
        ("rule", &q.rule),
        ("host", &q.host),
        ("q", &q.q),
        ("from", &q.from),
        ("to", &q.to),
        ("sort", &q.sort),
        ("live", &q.live),
    ] {
        if !v.is_empty() {
            out.append_pair(k, v);
        }
    }
    if let Some(p) = q.page {
        out.append_pair("page", &p.to_string());
    }
    out.finish()
}

/// `/incidents`: filtered, sorted, paged.
pub(super) async fn incidents(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    serve("/incidents", || async {
        let viewer = viewer(&app, &headers)?;
        let Query(q) = query.map_err(|e| Deny::BadRequest(e.body_text()))?;
        let filter = q.filter()?;
        let now = now_ms();
        let f = filter.clone();
        let (rows, total) = read(&app, move |s| s.incident_page(&f)).await?;
        let page = filter.offset / PAGE_ROWS + 1;
        let pages = total.div_ceil(PAGE_ROWS).max(1);
        let flash = match q.done.as_str() {
            "" => None,
            d => Some(d.chars().take(200).collect::<String>()),
        };
        Ok(page_for(
            "incidents.html",
            "Incidents",
            "/incidents",
            &viewer,
            minijinja::context! {
                f => &q,
                flash => flash,
                incidents => rows.into_iter().map(|i| row(i, now)).collect::<Vec<_>>(),
                total => total,
                page => page,
                pages => pages,
                prev => (page > 1).then(|| q.at_page(page - 1)),
                next => (page < pages).then(|| q.at_page(page + 1)),
            },
        ))
    })
    .await
}

/// `/incidents/{id}`: everything about one incident.
pub(super) async fn incident(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Response {
    serve("/incidents", || async {
        let viewer = viewer(&app, &headers)?;
        let id = incident_id(id)?;
        let (incident, deliveries, covered) = read(&app, move |s| {
            let i = s.incident(id)?;
            let d = s.deliveries(&i.fingerprint)?;
            let c = s.suppressions_of(Some(&i.fingerprint), 20)?;
            Ok((i, d, c))
        })
        .await?;
        let title = format!("#{} {}", incident.id, incident.summary);
        let mut view: IncidentView = incident.into();
        view.deliveries = Some(deliveries.into_iter().map(DeliveryView::from).collect());
        Ok(page_for(
            "incident.html",
            &title,
            "/incidents",
            &viewer,
            minijinja::context! {
                i => view,
                covered => covered.into_iter().map(crate::api::suppression_view).collect::<Vec<_>>(),
            },
        ))
    })
    .await
}

/// The note of an action form: at most 4,096 characters, empty is none.
fn note(form: &Form) -> Result<Option<String>, Deny> {
    let n = form.get("note").unwrap_or("").trim();
    if n.chars().count() > 4096 {
        return Err(Deny::BadRequest(
            "a note is at most 4,096 characters".into(),
        ));
    }
    Ok((!n.is_empty()).then(|| n.to_string()))
}

/// What an operator does to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ack,
    Resolve,
    Note,
}

impl Action {
    /// Does it through the engine as `actor`; the outer error is the engine
    /// not taking requests.
    async fn apply(
        self,
        app: &AppState,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Incident, ActionError>, Deny> {
        let r = match self {
            Action::Ack => app.engine.acknowledge(id, actor, note).await,
            Action::Resolve => app.engine.resolve(id, actor, note).await,
            Action::Note => match note {
                Some(n) => app.engine.note(id, actor, n).await,
                None => return Err(Deny::BadRequest("write the note first".into())),
            },
        };
        r.map_err(|e| Deny::Unavailable(e.to_string()))
    }
}

/// One incident's action from its page; back to the page.
async fn act_on(
    app: AppState,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    body: Bytes,
    action: Action,
) -> Response {
    act(|| async {
        let (viewer, form) = posted(&app, &headers, &body)?;
        let id = incident_id(id)?;
        action
            .apply(&app, id, viewer.name.clone(), note(&form)?)
            .await??;
        Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
    })
    .await
}

pub(super) async fn ack(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    body: Bytes,
) -> Response {
    act_on(app, headers, id, body, Action::Ack).await
}

pub(super) async fn note_add(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    body: Bytes,
) -> Response {
    act_on(app, headers, id, body, Action::Note).await
}

pub(super) async fn resolve(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    body: Bytes,
) -> Response {
    act_on(app, headers, id, body, Action::Resolve).await
}

/// Acknowledge or resolve the selected incidents, with a required note.
pub(super) async fn bulk(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    act(|| async {
        let (viewer, form) = posted(&app, &headers, &body)?;
        let note = note(&form)?
            .ok_or_else(|| Deny::BadRequest("a bulk action needs a note saying why".into()))?;
        let ids: Vec<i64> = form
            .all("id")
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| Deny::BadRequest(format!("'{v}' is not an incident id")))
            })
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Err(Deny::BadRequest("select at least one incident".into()));
        }
        if ids.len() > MAX_BULK {
            return Err(Deny::BadRequest(format!(
                "at most {MAX_BULK} incidents at once"
            )));
        }
        let action = match form.get("action").unwrap_or("") {
            "ack" => Action::Ack,
            "resolve" => Action::Resolve,
            a => return Err(Deny::BadRequest(format!("unknown action '{a}'"))),
        };
        let (mut done, mut refused) = (0, Vec::new());
        for id in ids {
            match action
                .apply(&app, id, viewer.name.clone(), Some(note.clone()))
                .await?
            {
                Ok(_) => done += 1,
                Err(e) => refused.push(format!("#{id}: {e}")),
            }
        }
        let verb = if action == Action::Ack {
            "acknowledged"
        } else {
            "resolved"
        };
        let mut said = format!("{done} {verb}");
        if !refused.is_empty() {
            said += &format!("; {} not: {}", refused.len(), refused.join("; "));
        }
        Ok(Redirect::to(&format!("/incidents?done={}", encode(&said))).into_response())
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct HostsQuery {
    #[serde(default)]
    state: String,
    after: Option<String>,
}

/// A host as the tables show it.
fn host_row(h: HostReport) -> minijinja::Value {
    let fullest = h.fullest_filesystem.as_ref().map_or("–".to_string(), |f| {
        format!("{} {}", f.mountpoint, percent(Some(f.used_ratio)))
    });
    minijinja::context! {
        cpu => percent(h.cpu_usage_ratio),
        memory => percent(h.memory_used_ratio),
        fullest => fullest,
        availability => percent(h.availability_30d),
        ..minijinja::Value::from_serialize(&h)
    }
}

async fn host_reports(app: &AppState, q: HostQuery) -> Result<Vec<HostReport>, Deny> {
    let metrics = Arc::clone(&app.metrics);
    let mut hosts = tokio::task::spawn_blocking(move || metrics.hosts(now_ms(), &q))
        .await
        .map_err(|e| Deny::Unavailable(e.to_string()))?;
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let live = read(app, move |s| s.live_ids(Some(&names))).await?;
    let mut by_host: HashMap<&str, Vec<i64>> = HashMap::new();
    for (id, host, _) in &live {
        by_host.entry(host.as_str()).or_default().push(*id);
    }
    for h in &mut hosts {
        h.live_incidents = by_host.remove(h.name.as_str()).unwrap_or_default();
    }
    Ok(hosts)
}

/// `/hosts`: by name, a page at a time.
pub(super) async fn hosts(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HostsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    serve("/hosts", || async {
        let viewer = viewer(&app, &headers)?;
        let Query(q) = query.map_err(|e| Deny::BadRequest(e.body_text()))?;
        let state = match q.state.as_str() {
            "" => None,
            "up" => Some(Avail::Up),
            "down" => Some(Avail::Down),
            "unknown" => Some(Avail::Unknown),
            s => return Err(Deny::BadRequest(format!("unknown state '{s}'"))),
        };
        let hosts = host_reports(
            &app,
            HostQuery {
                state,
                after: q.after.clone(),
                only: None,
                limit: HOST_ROWS,
            },
        )
        .await?;
        let next = (hosts.len() == HOST_ROWS).then(|| {
            let last = hosts.last().map(|h| h.name.as_str()).unwrap_or_default();
            format!("/hosts?state={}&after={}", encode(&q.state), encode(last))
        });
        Ok(page_for(
            "hosts.html",
            "Hosts",
            "/hosts",
            &viewer,
            minijinja::context! {
                hosts => hosts.into_iter().map(host_row).collect::<Vec<_>>(),
                state => q.state,
                next => next,
            },
        ))
    })
    .await
}

/// `/hosts/{name}`: one host and its last 30 days.
pub(super) async fn host(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    serve("/hosts", || async {
        let viewer = viewer(&app, &headers)?;
        let mut found = host_reports(
            &app,
            HostQuery {
                only: Some(name.clone()),
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
        let h = found
            .pop()
            .ok_or_else(|| Deny::NotFound("no such host is reported".into()))?;
        let now = now_ms();
        let metrics = Arc::clone(&app.metrics);
        let n = name.clone();
        let segments = tokio::task::spawn_blocking(move || metrics.host_bar(&n, now))
            .await
            .map_err(|e| Deny::Unavailable(e.to_string()))?
            .unwrap_or_default();
        let from = now - 30 * 86_400_000;
        let span = (now - from) as f64;
        let mut totals: HashMap<&str, i64> = HashMap::new();
        let segs: Vec<minijinja::Value> = segments
            .iter()
            .map(|&(a, b, kind)| {
                *totals.entry(kind).or_default() += b - a;
                // At least half a unit wide (a short outage stays visible),
                // never past the end.
                let width = ((b - a) as f64 / span * 1000.0).clamp(0.5, 1000.0);
                let x = ((a - from) as f64 / span * 1000.0).clamp(0.0, 1000.0 - width);
                minijinja::context! {
                    kind => kind,
                    x => format!("{x:.2}"),
                    width => format!("{width:.2}"),
                }
            })
            .collect();
        let t = |k: &str| duration_since(0, totals.get(k).copied().unwrap_or(0));
        let bar = minijinja::context! {
            segments => segs, up => t("up"), down => t("down"), unknown => t("unknown"), planned => t("planned"),
        };
        Ok(page_for(
            "host.html",
            &name,
            "/hosts",
            &viewer,
            minijinja::context! { h => host_row(h), bar => bar },
        ))
    })
    .await
}

/// `/services`: availability against target, budget and burn.
pub(super) async fn services(State(app): State<AppState>, headers: HeaderMap) -> Response {
    serve("/services", || async {
        let viewer = viewer(&app, &headers)?;
        let metrics = Arc::clone(&app.metrics);
        let now = now_ms();
        let (reports, daily) = tokio::task::spawn_blocking(move || {
            let reports = metrics.services(now);
            let names: Vec<String> = reports.iter().map(|r| r.name.clone()).collect();
            let daily = crate::kpi::ServiceStatus::by_name(metrics.service_history(&names, now));
            (reports, daily)
        })
        .await
        .map_err(|e| Deny::Unavailable(e.to_string()))?;
        let services: Vec<minijinja::Value> = reports
            .iter()
            .map(|s| {
                let days = daily
                    .get(&s.name)
                    .map(|d| day_bars(&d.days))
                    .unwrap_or_default();
                minijinja::context! {
                    name => &s.name,
                    days => days,
                    target => format!("{:.3} %", s.target * 100.0),
                    windows => s.windows.iter().map(|w| minijinja::context! {
                        window => w.window,
                        availability => percent(w.availability),
                        budget => percent(w.error_budget_remaining),
                        down => duration_since(0, (w.down_seconds * 1000.0) as i64),
                        planned => duration_since(0, (w.planned_seconds * 1000.0) as i64),
                    }).collect::<Vec<_>>(),
                    burn => s.burn_rates.iter().map(|(w, r)| minijinja::context! {
                        window => w,
                        value => r.map_or("–".into(), |r| format!("{r:.2}×")),
                        hot => r.is_some_and(|r| r > 1.0),
                    }).collect::<Vec<_>>(),
                }
            })
            .collect();
        Ok(page_for(
            "services.html",
            "Services",
            "/services",
            &viewer,
            minijinja::context! { services => services },
        ))
    })
    .await
}

/// `/problems`: recurring incidents.
pub(super) async fn problems(State(app): State<AppState>, headers: HeaderMap) -> Response {
    serve("/problems", || async {
        let viewer = viewer(&app, &headers)?;
        let problems = read(&app, |s| s.problems(None, 500)).await?;
        Ok(page_for(
            "problems.html",
            "Problems",
            "/problems",
            &viewer,
            minijinja::context! {
                problems => problems.into_iter().map(ProblemView::from).collect::<Vec<_>>(),
            },
        ))
    })
    .await
}

/// `/changes`: planned changes, and the form to record one.
pub(super) async fn changes(State(app): State<AppState>, headers: HeaderMap) -> Response {
    serve("/changes", || async {
        let viewer = viewer(&app, &headers)?;
        let now = now_ms();
        let changes = read(&app, |s| s.changes(false, 500)).await?;
        // Maintenance windows: each one's occurrences in the coming week.
        let config = app.config();
        let week = 7 * 86_400_000;
        let maintenance: Vec<minijinja::Value> = config
            .maintenance
            .iter()
            .map(|m| {
                minijinja::context! {
                    name => &m.name,
                    hosts => &m.scope.spec.hosts,
                    host_labels => &m.scope.spec.host_labels,
                    timezone => m.timezone.name(),
                    next => m.occurrences(now, now + week).into_iter().take(7).map(|(a, b)| minijinja::context! {
                        start => rfc3339(a), end => rfc3339(b),
                    }).collect::<Vec<_>>(),
                }
            })
            .collect();
        Ok(page_for(
            "changes.html",
            "Changes",
            "/changes",
            &viewer,
            minijinja::context! {
                changes => changes.into_iter().map(|c| ChangeView::new(c, now)).collect::<Vec<_>>(),
                maintenance => maintenance,
            },
        ))
    })
    .await
}

/// A time of the change form: `<field>_utc` (RFC 3339, what the page's
/// script sends from the browser's time zone), else the `datetime-local`
/// field itself, taken as UTC.
fn form_time(form: &Form, field: &str) -> Result<String, Deny> {
    match form
        .get(&format!("{field}_utc"))
        .filter(|v| !v.trim().is_empty())
    {
        Some(v) => chrono::DateTime::parse_from_rfc3339(v.trim())
            .map(|t| t.to_utc().to_rfc3339())
            .map_err(|_| Deny::BadRequest(format!("{field}: '{v}' is not an RFC 3339 time"))),
        None => local_time(field, form.get(field).unwrap_or("")),
    }
}

/// A `datetime-local` value (UTC) as RFC 3339.
fn local_time(field: &str, v: &str) -> Result<String, Deny> {
    chrono::NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M")
        .map(|t| t.and_utc().to_rfc3339())
        .map_err(|_| {
            Deny::BadRequest(format!(
                "{field}: '{v}' is not a time like 2026-11-30T14:00"
            ))
        })
}

pub(super) async fn change_create(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    act(|| async {
        let (viewer, form) = posted(&app, &headers, &body)?;
        let hosts: Vec<&str> = form
            .get("hosts")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let json = serde_json::json!({
            "title": form.get("title").unwrap_or(""),
            "scope": {"hosts": hosts},
            "start": form_time(&form, "start")?,
            "end": form_time(&form, "end")?,
            "verify_for": form.get("verify_for").filter(|v| !v.trim().is_empty()).unwrap_or("30m"),
        });
        let change = crate::api::new_change(json.to_string().as_bytes(), now_ms())?;
        app.engine
            .create_change(change, viewer.name.clone())
            .await
            .map_err(|e| Deny::Unavailable(e.to_string()))??;
        Ok(Redirect::to("/changes").into_response())
    })
    .await
}

/// `/status`: the public status page (`status_page:`), no login, cacheable;
/// services by name only, never a host name, rule or summary.
pub(super) async fn status(State(app): State<AppState>) -> Response {
    let config = app.config();
    let Some(page) = config.status_page.clone() else {
        return Deny::NotFound(
            "there is no status page (`status_page:` in the collector's config)".into(),
        )
        .answer(None);
    };
    let now = now_ms();
    let names = page.services.clone();
    let from_day = now - now.rem_euclid(86_400_000) - crate::kpi::STATUS_DAYS as i64 * 86_400_000;
    let read_names = names.clone();
    let (live, stored) = match read(&app, move |s| {
        Ok((s.live_ids(None)?, s.service_days(&read_names, from_day)?))
    })
    .await
    {
        Ok(l) => l,
        Err(e) => return Deny::from(e).answer(None),
    };
    let metrics = Arc::clone(&app.metrics);
    let statuses = match tokio::task::spawn_blocking(move || {
        let live: Vec<(String, i64)> = live.into_iter().map(|(_, h, at)| (h, at)).collect();
        metrics.service_status(&names, &live, &stored, now)
    })
    .await
    {
        Ok(s) => s,
        Err(e) => return Deny::Unavailable(e.to_string()).answer(None),
    };
    let down = statuses.iter().filter(|s| s.state == "down").count();
    let overall = match down {
        0 if statuses.iter().all(|s| s.state == "up") => {
            ("ok", "All systems operational.".to_string())
        }
        0 => (
            "unknown",
            "Some services have not reported yet.".to_string(),
        ),
        n => (
            "down",
            format!("{n} of {} services are down.", statuses.len()),
        ),
    };
    let services: Vec<minijinja::Value> = statuses
        .iter()
        .map(|s| {
            let n = s.days.len();
            let days = day_bars(&s.days);
            let incidents = s.incidents_since_ms.first().map(|first| {
                format!(
                    "{} open incident{} since {} (UTC) — we are on it.",
                    s.incidents_since_ms.len(),
                    if s.incidents_since_ms.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    rfc3339(*first)
                        .unwrap_or_default()
                        .get(..16)
                        .unwrap_or_default()
                        .replace('T', " "),
                )
            });
            minijinja::context! {
                name => &s.name,
                state => s.state,
                words => match s.state { "up" => "Operational", "down" => "Down", _ => "No data" },
                incidents => incidents,
                days => days,
                width => n * 8,
                availability => percent(s.availability),
            }
        })
        .collect();
    let mut resp = render(
        "status.html",
        minijinja::context! {
            title => page.title,
            overall => minijinja::context! { class => overall.0, text => overall.1 },
            services => services,
            updated => rfc3339(now),
        },
        StatusCode::OK,
        None,
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    resp
}

/// One SVG bar per day, oldest first: its x, its class (up at 99.9 % or
/// more, degraded at 99 %, else down; unknown without data), its title.
fn day_bars(days: &[Option<f64>]) -> Vec<minijinja::Value> {
    let n = days.len();
    days.iter()
        .enumerate()
        .map(|(i, d)| {
            let class = match d {
                None => "unknown",
                Some(a) if *a >= 0.999 => "up",
                Some(a) if *a >= 0.99 => "degraded",
                Some(_) => "down",
            };
            let ago = n - 1 - i;
            let when = if ago == 0 {
                "today".to_string()
            } else {
                format!("{ago} days ago")
            };
            minijinja::context! { x => i * 8, class => class, label => format!("{when}: {}", percent(*d)) }
        })
        .collect()
}
