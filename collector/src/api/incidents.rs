//! Incidents and problems: list, show (with deliveries), acknowledge and
//! resolve with an optional note.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    pub(super) state: Option<String>,
    pub(super) limit: Option<usize>,
}

impl ListQuery {
    /// `?state=` parsed as `S` (incident or problem state); 400 names the field.
    fn state<S: std::str::FromStr<Err = String>>(&self) -> Result<Option<S>, ApiError> {
        self.state
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| ApiError::BadRequest(e, Some("state".into())))
    }
}

pub(super) async fn incidents_list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<IncidentView>>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let state = q.state()?;
    let limit = list_limit(q.limit);
    let incidents = read(&app, move |s| s.incidents(state, limit)).await?;
    Ok(Json(
        incidents.into_iter().map(IncidentView::from).collect(),
    ))
}

pub(super) async fn incidents_show(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<IncidentView>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let (incident, deliveries) = read(&app, move |s| {
        Ok((s.incident(id)?, s.deliveries(&format!("incident:{id}"))?))
    })
    .await?;
    let mut view = IncidentView::from(incident);
    view.deliveries = Some(deliveries.into_iter().map(DeliveryView::from).collect());
    Ok(Json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteBody {
    pub(super) note: Option<String>,
}

pub(super) fn note(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: NoteBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(
            format!("body must be JSON like {{\"note\": \"...\"}}: {e}"),
            None,
        )
    })?;
    match parsed.note {
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => Err(ApiError::BadRequest(
            format!("note is longer than {MAX_NOTE_CHARS} characters"),
            Some("note".into()),
        )),
        n => Ok(n),
    }
}

pub(super) async fn incidents_ack(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let caller = authorize(&app, &headers, Role::Operator)?;
    let note = note(&body)?;
    let incident = app.engine.acknowledge(id, caller.name, note).await??;
    Ok(Json(incident.into()))
}

pub(super) async fn incidents_resolve(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let caller = authorize(&app, &headers, Role::Operator)?;
    let note = note(&body)?;
    let incident = app.engine.resolve(id, caller.name, note).await??;
    Ok(Json(incident.into()))
}

/// `POST /api/v1/incidents/{id}/notes` `{"note": "…"}`: a note on the
/// timeline, in any state.
pub(super) async fn incidents_note(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let caller = authorize(&app, &headers, Role::Operator)?;
    let Some(note) = note(&body)?.filter(|n| !n.trim().is_empty()) else {
        return Err(ApiError::BadRequest(
            "give the note: {\"note\": \"…\"}".into(),
            Some("note".into()),
        ));
    };
    let incident = app.engine.note(id, caller.name, note).await??;
    Ok(Json(incident.into()))
}

pub(super) async fn problems_list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<ProblemView>>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let state = q.state()?;
    let limit = list_limit(q.limit);
    let problems = read(&app, move |s| s.problems(state, limit)).await?;
    Ok(Json(problems.into_iter().map(ProblemView::from).collect()))
}

pub(super) async fn problems_show(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<ProblemView>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let problem = read(&app, move |s| s.problem(id)).await?;
    Ok(Json(problem.into()))
}

pub(super) async fn problems_resolve(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<ProblemView>, ApiError> {
    let caller = authorize(&app, &headers, Role::Operator)?;
    let note = note(&body)?;
    let problem = app.engine.resolve_problem(id, caller.name, note).await??;
    Ok(Json(problem.into()))
}
