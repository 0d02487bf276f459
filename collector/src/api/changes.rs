//! Planned changes (list, record) and the breaches windows suppressed.

use super::*;

pub(super) async fn changes_list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Vec<ChangeView>>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let limit = list_limit(q.limit);
    let changes = read(&app, move |s| s.changes(false, limit)).await?;
    let now = now_ms();
    Ok(Json(
        changes
            .into_iter()
            .map(|c| ChangeView::new(c, now))
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitQuery {
    pub(super) limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeBody {
    pub(super) title: String,
    pub(super) scope: ScopeSpec,
    pub(super) start: String,
    pub(super) end: String,
    pub(super) verify_for: Option<String>,
}

pub(super) const MAX_TITLE_CHARS: usize = 200;

pub(super) const MAX_CHANGE_LENGTH: Duration = Duration::from_secs(30 * 86_400);

pub(super) const MAX_VERIFY_FOR: Duration = Duration::from_secs(7 * 86_400);

pub(super) const DEFAULT_VERIFY_FOR: Duration = Duration::from_secs(30 * 60);

/// Validates a change request into what the engine records.
pub(crate) fn new_change(body: &[u8], now_ms: i64) -> Result<NewChange, ApiError> {
    let b: ChangeBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(
            format!(
                "body must be JSON like {{\"title\": \"…\", \"scope\": {{\"hosts\": [\"web-*\"]}}, \"start\": \"…\", \"end\": \"…\", \"verify_for\": \"30m\"}}: {e}"
            ),
            None,
        )
    })?;
    let title = b.title.trim().to_string();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(bad(
            "title",
            format!("must be 1 to {MAX_TITLE_CHARS} characters"),
        ));
    }
    let start_ms = parse_time("start", &b.start)?;
    let end_ms = parse_time("end", &b.end)?;
    if end_ms <= start_ms {
        return Err(bad("end", "must be after start"));
    }
    if end_ms - start_ms > duration_ms(MAX_CHANGE_LENGTH) {
        return Err(bad("end", "a change may last at most 30 days"));
    }
    if end_ms <= now_ms {
        return Err(bad(
            "end",
            "is in the past; record changes before (or while) they happen",
        ));
    }
    let verify_for = match &b.verify_for {
        None => DEFAULT_VERIFY_FOR,
        Some(s) => humantime::parse_duration(s).map_err(|e| {
            bad(
                "verify_for",
                format!("'{s}' is not a duration like 30m: {e}"),
            )
        })?,
    };
    if verify_for > MAX_VERIFY_FOR {
        return Err(bad("verify_for", "must be at most 7 days"));
    }
    crate::windows::Scope::new(b.scope.clone()).map_err(|(f, m)| bad(&f, m))?;
    Ok(NewChange {
        title,
        scope: b.scope,
        start_ms,
        end_ms,
        verify_for,
    })
}

pub(super) async fn changes_create(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    let caller = authorize(&app, &headers, Role::Operator)?;
    let now = now_ms();
    let change = new_change(&body, now)?;
    let change = app.engine.create_change(change, caller.name).await??;
    Ok((StatusCode::CREATED, Json(ChangeView::new(change, now))))
}

pub(super) async fn suppressions_list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Vec<SuppressionView>>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let limit = list_limit(q.limit);
    let rows = read(&app, move |s| s.suppressions(limit)).await?;
    Ok(Json(rows.into_iter().map(suppression_view).collect()))
}

/// A suppressed breach as the API (and the console) shows it.
pub(crate) fn suppression_view(s: crate::store::Suppression) -> SuppressionView {
    SuppressionView {
        id: s.id,
        at: rfc3339(s.at_ms),
        fingerprint: s.fingerprint,
        rule: s.rule,
        host: s.host,
        labels: s.labels,
        summary: s.summary,
        window_kind: s.window_kind,
        window: s.window_name,
        change_id: s.change_id,
    }
}
