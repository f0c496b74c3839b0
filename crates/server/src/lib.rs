//! The HTTP server: the governed query API ([`governed`]: `GET /api/persons/{key}`, every field
//! decided under the caller's grants and jurisdiction, every read audited before it is answered)
//! and the intake push endpoint, through which a department system sends NDJSON batches instead
//! of files:
//!
//! `POST /api/intake/{source}/batches` with `Authorization: Bearer KEY` and one JSON object per
//! line; a snapshot source's batch (as its mapping declares) withdraws what it lacks. The source must be registered (its mapping stored by `tongban ingest` or
//! `tongban source add`); the batch is cleaned and stored exactly as a file would be, and the
//! answer is the batch with its counts.
//!
//! Until the sharing issue brings department tokens, one configured intake key guards the
//! endpoint; without a key the endpoint is off. Errors are JSON `{"error": code, "message": …}`
//! with a 4xx status for anything the caller can fix; internal details (SQL, paths) never reach
//! the client — they go to the server's log.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tongban_intake::mapping::Mapping;
use tongban_intake::pipeline::{IngestError, ingest_ndjson};
use tongban_store::Store;

pub mod console;
pub mod governed;
pub mod openapi;
pub mod search;

/// The largest pushed batch; bigger deliveries go in several batches or as files.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The key a pushing system must present; `None` turns the push endpoint off.
    pub intake_key: Option<String>,
    /// The largest body accepted, [`MAX_BODY`] unless a test wants less.
    pub max_body: usize,
    /// The governed query API's identities, audit log and catalogue; `None` turns it off.
    pub sharing: Option<Arc<governed::Sharing>>,
}

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A failure of ours: logged in full, reported to the client without details.
    fn internal(detail: impl std::fmt::Display) -> ApiError {
        eprintln!("internal error: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the details are in the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/intake/{source}/batches", post(push_batch))
        .route(
            "/api/openapi.json",
            get(|| async { Json(openapi::document()) }),
        )
        .route("/api/persons", get(governed::search_persons))
        .route("/api/entities", get(governed::search_entities))
        .route("/api/rooms", get(governed::search_rooms))
        .route("/api/buildings", get(governed::search_buildings))
        .route("/api/persons/lookup", post(governed::bulk_persons))
        .route("/api/entities/lookup", post(governed::bulk_entities))
        .route("/api/rooms/lookup", post(governed::bulk_rooms))
        .route("/api/buildings/lookup", post(governed::bulk_buildings))
        .route("/api/persons/{key}", get(governed::person))
        .route("/api/entities/{key}", get(governed::entity))
        .route("/api/rooms/{key}", get(governed::room))
        .route("/api/buildings/{key}", get(governed::building))
        .route("/api/me/accesses", get(governed::my_accesses))
        .route("/api/catalogue", get(governed::catalogue))
        .route("/api/catalogue/{id}", get(governed::catalogue_resource))
        .merge(console::routes())
        .layer(DefaultBodyLimit::max(state.max_body))
        .with_state(state)
        // Swagger UI from the swagger-ui-dist crate, which embeds its files: the page works on a
        // network with no way out.
        .merge(swagger_ui_dist::generate_routes(
            swagger_ui_dist::ApiDefinition {
                uri_prefix: "/api/docs",
                api_definition: swagger_ui_dist::OpenApiSource::Uri("/api/openapi.json"),
                title: Some("Tongban 通办 API"),
            },
        ))
        // Clients get every error as JSON with a code and a message, unknown paths and
        // methods included (axum answers those with an empty body by itself).
        // A console path that no page answers gets the console's own page in the user's
        // language instead: a person in a browser, not an API client, typed it.
        .fallback(|headers: HeaderMap, uri: axum::http::Uri| async move {
            if uri.path() == "/console" || uri.path().starts_with("/console/") {
                return console::not_found_page(&headers, uri.path()).await;
            }
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no such path: {} (the API is described at /api/docs)",
                    uri.path()
                ),
            )
            .into_response()
        })
        .method_not_allowed_fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{method} is not served at {} (see /api/docs)", uri.path()),
                )
            },
        )
}

/// The credentials of an `Authorization: Bearer …` header; the scheme's name is
/// case-insensitive (RFC 9110), so `bearer` and `BEARER` are read too.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
        .filter(|c| !c.is_empty())
}

/// Compares in time independent of where the strings differ, so the key cannot be guessed a
/// character at a time from response times.
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_key(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.intake_key else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "intake_disabled",
            "the intake push endpoint is off: start the server with --intake-key",
        ));
    };
    let given =
        bearer(headers).or_else(|| headers.get("x-tongban-key").and_then(|v| v.to_str().ok()));
    match given {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no_key",
            "send the intake key as `Authorization: Bearer KEY`",
        )),
        Some(k) if same_key(k.trim(), expected) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_key",
            "the intake key is not valid",
        )),
    }
}

fn valid_source_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

async fn push_batch(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_key(&state, &headers)?;
    if !valid_source_id(&source) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_source",
            "a source id is letters, digits and underscores",
        ));
    }
    let Some(src) = state
        .store
        .source(&source)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!(
                "source {source} is not registered: register its mapping with `tongban source add`"
            ),
        ));
    };
    let mapping = Mapping::parse(&src.mapping, &format!("the stored mapping of {source}"))
        .map_err(ApiError::internal)?;
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_utf8",
            "the body must be UTF-8 JSON lines",
        ));
    };
    // Some systems write a byte-order mark even in JSON lines; it is not part of the first record.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // A body that is not JSON lines at all (a CSV file sent to the endpoint, say) is refused
    // whole, before a batch is begun: read line by line, each of its lines would be quarantined
    // as a record. A bad line among objects is quarantined as usual.
    let Some((first_line, first)) = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .find(|(_, l)| !l.is_empty())
    else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the batch is empty: send one JSON object per line",
        ));
    };
    if !first.starts_with('{') {
        let shown: String = first.chars().take(40).collect();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_json_lines",
            format!(
                "line {first_line} is not a JSON object ({shown:?}): the body must be JSON lines, one object per line; send files with `tongban ingest`"
            ),
        ));
    }
    let body = text.as_bytes().to_vec();
    let origin = format!("push {source}");
    match ingest_ndjson(state.store.as_ref(), Arc::new(mapping), &origin, body).await {
        Ok(r) => {
            // A pushed batch is an administrative change like a file ingested from the command
            // line, and is audited the same way where the server keeps an audit log.
            if let Some(sharing) = &state.sharing {
                let b = &r.batch;
                sharing
                    .audit
                    .append(tongban_sharing::audit::Event {
                        at: tongban_store::now_millis(),
                        actor: format!("push:{source}"),
                        action: "intake.push".into(),
                        subject: source.clone(),
                        detail: serde_json::json!({
                            "batch": b.id, "inserted": b.counts.inserted,
                            "updated": b.counts.updated, "quarantined": b.counts.quarantined,
                            "withdrawn": b.withdrawn, "redelivered": r.redelivered,
                        })
                        .to_string(),
                    })
                    .await
                    .map_err(ApiError::internal)?;
            }
            Ok(Json(serde_json::json!({
                "batch": tongban_standards::date::with_china_times(
                    serde_json::to_value(&r.batch).map_err(ApiError::internal)?
                ),
                "read": { "records": r.read.records, "unreadable": r.read.unreadable },
                "redelivered": r.redelivered,
            })))
        }
        Err(IngestError::EmptySnapshot { .. }) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_snapshot",
            "a snapshot with no storable records would withdraw everything; nothing was withdrawn",
        )),
        Err(IngestError::Read(m)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "unreadable", m)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Serves `router(state)` on a bound listener until the process is stopped.
pub async fn serve_on(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// Serves on `listener` until `stop` completes, then takes no more connections, closes the idle
/// ones and lets the requests in flight finish before returning: a governed read is audited
/// before it is answered, so none is left recorded but unanswered by a stop.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", value.parse().unwrap());
            bearer(&h).map(String::from)
        };
        for v in [
            "Bearer tb_1",
            "bearer tb_1",
            "BEARER  tb_1 ",
            " Bearer tb_1",
        ] {
            assert_eq!(with(v).as_deref(), Some("tb_1"), "{v:?}");
        }
        for v in ["Basic dGI6MQ==", "Bearer", "Bearer ", "Bearertb_1", "tb_1"] {
            assert_eq!(with(v), None, "{v:?}");
        }
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn keys_compare_exactly() {
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abc", "abd"));
        assert!(!same_key("abc", "abcd"));
        assert!(valid_source_id("grid_collection"));
        assert!(!valid_source_id("../etc"));
        assert!(!valid_source_id(""));
    }
}
