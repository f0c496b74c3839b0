//! The web console: server-rendered pages (minijinja templates built into the binary) that work
//! without JavaScript, in Chinese by default with an English switch.
//!
//! A user signs in with their user id and password; the session is an API token that expires
//! after a working day, kept in an HttpOnly, SameSite=Strict cookie (so another site's form
//! cannot act with it), and revoked on sign-out. Every page that shows a subject goes through the
//! governed API's own functions ([`crate::governed::look`], [`crate::governed::run_search`],
//! [`crate::governed::record`]): the same policy decides each field, and each read is audited
//! before the page is sent. This module decides nothing and stores nothing itself; it turns
//! what those functions return into HTML.

pub mod dashboard;
mod text;

use crate::governed::{Caller, Seen, Sharing, look, principal_of, record, run_search};
use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, context};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use tongban_sharing::identity::{Principal, Role};

/// A form, or why it could not be read (a field missing or of the wrong type).
type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

/// The session cookie's name.
const SESSION: &str = "tb_session";
/// The language cookie's name.
const LANG: &str = "tb_lang";

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang/{lang}", get(set_lang))
        .route("/console", get(home))
        .route("/console/search", get(search))
        .route("/console/person/{key}", get(person))
        .route("/console/entity/{key}", get(entity))
        .route("/console/room/{key}", get(room))
        .route("/console/building/{key}", get(building))
        .route("/console/me", get(me))
        .route("/console/grants", get(grants).post(request_grant))
        .route("/console/grants/{id}/decide", post(decide_grant))
        .route("/console/audit", get(audit))
        .route("/console/quality", get(quality))
        .route("/console/alerts", get(alerts))
        .route("/console/catalogue", get(catalogue))
        .layer(axum::middleware::map_response(protect))
        .layer(axum::middleware::from_fn(same_origin))
}

/// A form posted to the console from another site is refused: the session cookie is already
/// SameSite=Strict, and this also covers the login form, which has no session yet (so another
/// site cannot sign a user in as someone else). Browsers send `Origin` with every POST; a
/// request without one (a script, a test) is let through to the handlers' own checks.
async fn same_origin(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.method() == axum::http::Method::POST {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if let Some(origin) = origin {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            if origin_host != host {
                return (StatusCode::FORBIDDEN, "a form from another site is refused")
                    .into_response();
            }
        }
    }
    next.run(request).await
}

/// Every console page: no framing by other sites, no scripts at all (the pages need none), no
/// resources from elsewhere, and no caching of pages that show personal data.
async fn protect(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("dashboard.html", include_str!("templates/dashboard.html")),
            ("search.html", include_str!("templates/search.html")),
            ("record.html", include_str!("templates/record.html")),
            ("me.html", include_str!("templates/me.html")),
            ("grants.html", include_str!("templates/grants.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("message.html", include_str!("templates/message.html")),
            ("quality.html", include_str!("templates/quality.html")),
            ("alerts.html", include_str!("templates/alerts.html")),
            ("catalogue.html", include_str!("templates/catalogue.html")),
        ] {
            // The templates are part of the binary and checked by the tests; one that does not
            // parse shows up as a render error on its page, never as a crash.
            if let Err(e) = env.add_template(name, source) {
                eprintln!("console template {name}: {e}");
            }
        }
        env
    })
}

/// A page: its template rendered with the common context (language, labels, the user).
struct Page {
    status: StatusCode,
    html: String,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (self.status, Html(self.html)).into_response()
    }
}

fn lang_of(headers: &HeaderMap) -> &'static str {
    match cookie(headers, LANG) {
        Some("en") => "en",
        _ => "zh",
    }
}

fn render(
    headers: &HeaderMap,
    status: StatusCode,
    name: &str,
    user: Option<&Principal>,
    ctx: Value,
) -> Page {
    let lang = lang_of(headers);
    let user = user.map(|p| {
        json!({"id": p.user_id, "name": p.name, "role": p.role.as_str(), "role_zh": p.role.zh(),
            "department": p.department, "jurisdiction": p.jurisdiction,
            "admin": p.role == Role::DataBureauAdmin, "citizen": p.role == Role::Citizen})
    });
    let result = environment().get_template(name).and_then(|t| {
        t.render(context! { lang => lang, t => text::labels(lang), user => user, page => ctx })
    });
    match result {
        Ok(html) => Page { status, html },
        Err(e) => {
            eprintln!("console page {name}: {e:#}");
            Page {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                html: "<h1>500</h1><p>internal error; the details are in the server log</p>".into(),
            }
        }
    }
}

fn message(headers: &HeaderMap, status: StatusCode, user: Option<&Principal>, text: &str) -> Page {
    render(
        headers,
        status,
        "message.html",
        user,
        json!({ "message": text }),
    )
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The signed-in user of a console page, as an extractor: a handler that takes it runs only
/// for a valid session; anyone else is sent to the login page.
struct SignedIn {
    sharing: Arc<Sharing>,
    p: Principal,
}

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let (sharing, p) = signed_in(state, &parts.headers).await?;
        Ok(SignedIn { sharing, p })
    }
}

/// The signed-in user, or the response that sends them to the login page.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<Sharing>, Principal), Response> {
    let Some(sharing) = state.sharing.clone() else {
        return Err(message(
            headers,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            say(headers, "console_off"),
        )
        .into_response());
    };
    let Some(token) = cookie(headers, SESSION) else {
        return Err(Redirect::to("/console/login").into_response());
    };
    match principal_of(&sharing, token).await {
        Ok(p) => Ok((sharing, p)),
        Err(_) => Err(Redirect::to("/console/login").into_response()),
    }
}

/// An error of the API beneath a page: a lead in the page's language, then the error's own
/// words (which name the field or value at fault). A server error says only that it happened.
fn api_error_page(headers: &HeaderMap, user: &Principal, e: ApiError) -> Response {
    let text = format!("{} {}", say(headers, "request_failed"), e.message);
    message(headers, e.status, Some(user), &text).into_response()
}

/// The console's word for `key` in the language of the request's page.
fn say(headers: &HeaderMap, key: &'static str) -> &'static str {
    text::label(lang_of(headers), key)
}

/// A console path that no page answers: the message page, in the user's language, rather than
/// the API's JSON error (the server's fallback sends browsers here for paths under /console).
pub async fn not_found_page(headers: &HeaderMap, path: &str) -> Response {
    let text = format!(
        "{} {}",
        say(headers, "page_not_found"),
        path.chars().take(80).collect::<String>()
    );
    protect(message(headers, StatusCode::NOT_FOUND, None, &text).into_response()).await
}

async fn login_page(headers: HeaderMap) -> Page {
    render(&headers, StatusCode::OK, "login.html", None, json!({}))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<LoginForm>,
) -> Response {
    let Some(sharing) = state.sharing.as_ref() else {
        return message(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            say(&headers, "console_off"),
        )
        .into_response();
    };
    let failed = |headers: &HeaderMap| {
        render(
            headers,
            StatusCode::UNAUTHORIZED,
            "login.html",
            None,
            json!({"failed": true}),
        )
        .into_response()
    };
    let Ok(Form(form)) = form else {
        return failed(&headers);
    };
    match sharing
        .identities
        .login(
            form.user.trim(),
            &form.password,
            tongban_store::now_millis(),
        )
        .await
    {
        Ok((_, token)) => {
            let cookie = format!(
                "{SESSION}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                tongban_sharing::identity::SESSION_MS / 1000
            );
            let mut response = Redirect::to("/console").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(_) => failed(&headers),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Ok((sharing, p)) = signed_in(&state, &headers).await {
        let _ = sharing.identities.revoke(&p.token_id).await;
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tb_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn set_lang(Path(lang): Path<String>, headers: HeaderMap) -> Response {
    let lang = if lang == "en" { "en" } else { "zh" };
    // Back to the page the switch was on, if it was one of ours.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/console").map(|i| r[i..].to_string()))
        .unwrap_or_else(|| "/console".into());
    let mut response = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG}={lang}; Path=/; SameSite=Lax; Max-Age=31536000"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn home(headers: HeaderMap, SignedIn { sharing, p }: SignedIn) -> Response {
    if p.role == Role::Citizen {
        return Redirect::to("/console/me").into_response();
    }
    let figures = sharing.dashboard.read().ok().and_then(|d| d.clone());
    let Some(d) = figures else {
        return render(
            &headers,
            StatusCode::OK,
            "dashboard.html",
            Some(&p),
            json!({"computing": true}),
        )
        .into_response();
    };
    // Every figure is added up over the communities in the user's jurisdiction.
    let mine = |code: &str| tongban_sharing::identity::within(&p.jurisdiction, code);
    let communities: Vec<&dashboard::Community> =
        d.communities.iter().filter(|c| mine(&c.code)).collect();
    let tiles: Vec<Value> = communities
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"x": (i % 8) * 92, "y": (i / 8) * 62, "name": c.name, "code": c.code,
                "people": c.registered + c.floating, "opacity": 0.12 + 0.88 * c.heat})
        })
        .collect();
    let rows = tiles.len().div_ceil(8).max(1);
    let pyramid = dashboard::pyramid_within(&d, mine);
    let widest = pyramid
        .iter()
        .map(|b| b.male.max(b.female))
        .max()
        .unwrap_or(0)
        .max(1);
    let industries = dashboard::industries_within(&d, mine);
    let ctx = json!({
        "communities": communities,
        "registered": communities.iter().map(|c| c.registered).sum::<u64>(),
        "floating": communities.iter().map(|c| c.floating).sum::<u64>(),
        "tiles": tiles,
        "heat_height": rows * 62,
        "pyramid": pyramid.iter().enumerate().map(|(i, b)| json!({
            "label": b.label, "male": b.male, "female": b.female, "y": i * 16,
            "mw": (b.male as f64 / widest as f64 * 180.0).round(),
            "fw": (b.female as f64 / widest as f64 * 180.0).round(),
        })).collect::<Vec<_>>(),
        "entities": industries.iter().map(|(_, n)| n).sum::<u64>(),
        "industries": industries,
        "persons": pyramid.iter().map(|b| b.male + b.female).sum::<u64>(),
        "unplaced": d.unplaced,
        "deceased": d.deceased,
        "calls": d.calls,
        "quality": d.quality.iter().map(quality_row).collect::<Vec<_>>(),
        "alerts": d.alerts.len(),
        "took_ms": d.took_ms,
    });
    render(&headers, StatusCode::OK, "dashboard.html", Some(&p), ctx).into_response()
}

async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let kind: &'static str = match params
        .iter()
        .find(|(k, _)| k == "kind")
        .map(|(_, v)| v.as_str())
    {
        Some("entity") => "entity",
        Some("room") => "room",
        Some("building") => "building",
        _ => "person",
    };
    let given: Vec<(String, String)> = params
        .iter()
        .filter(|(k, v)| k != "kind" && !v.trim().is_empty())
        .cloned()
        .collect();
    let mut ctx = json!({"kind": kind, "params": params.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()});
    if given.is_empty() {
        return render(&headers, StatusCode::OK, "search.html", Some(&p), ctx).into_response();
    }
    let parsed = match crate::search::parse_in(kind, &given, Some(&p.jurisdiction)) {
        Ok(s) => s,
        Err(e) => {
            ctx["error"] = json!(e.to_string());
            return render(
                &headers,
                StatusCode::BAD_REQUEST,
                "search.html",
                Some(&p),
                ctx,
            )
            .into_response();
        }
    };
    let store = state.store.as_ref();
    let caller = match Caller::new(&sharing, store, p.clone()).await {
        Ok(c) => c,
        Err(e) => return api_error_page(&headers, &p, e),
    };
    match run_search(&sharing, store, &caller, kind, &parsed, "console").await {
        Ok((views, truncated)) => {
            ctx["results"] = json!(views.iter().map(summary).collect::<Vec<_>>());
            ctx["truncated"] = json!(truncated);
            ctx["searched"] = json!(true);
            // The API's note on fields no grant of the caller unmasks, from the grants alone.
            let unseen =
                crate::governed::fields_searched_unseen(&sharing, &caller, kind, &parsed.required);
            ctx["unseen"] = json!(
                unseen
                    .into_iter()
                    .map(|f| say(&headers, f))
                    .collect::<Vec<_>>()
            );
            render(&headers, StatusCode::OK, "search.html", Some(&p), ctx).into_response()
        }
        Err(e) => api_error_page(&headers, &p, e),
    }
}

/// A one-line summary of a view for lists: its key and its most telling shown fields.
fn summary(v: &crate::governed::View) -> Value {
    let shown = |f: &str| -> Value {
        match v.fields.get(f) {
            Some(x) if x.get("value").is_some() => x["value"].clone(),
            Some(x) => x.get("masked").cloned().unwrap_or(Value::Null),
            None => Value::Null,
        }
    };
    let first = |fields: &[&str]| -> Value {
        fields
            .iter()
            .map(|f| shown(f))
            .find(|x| !x.is_null())
            .unwrap_or(Value::Null)
    };
    json!({"kind": v.kind, "key": v.key, "community": v.community,
        "title": first(&["name", "address_key"]),
        "detail": first(&["birth_date", "credit_code", "community"])})
}

async fn person(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    user: SignedIn,
) -> Response {
    page_360(state, headers, user, "person", key).await
}
async fn entity(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    user: SignedIn,
) -> Response {
    page_360(state, headers, user, "entity", key).await
}
async fn room(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    user: SignedIn,
) -> Response {
    page_360(state, headers, user, "room", key).await
}
async fn building(
    state: State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    user: SignedIn,
) -> Response {
    page_360(state, headers, user, "building", key).await
}

fn kind_of_key(key: &str) -> Option<&'static str> {
    match key.chars().next() {
        Some('P') => Some("person"),
        Some('E') => Some("entity"),
        Some('R') => Some("room"),
        Some('B') => Some("building"),
        _ => None,
    }
}

/// The governed view of one subject, audited, with its fields and every linked record.
async fn subject_page(
    state: &AppState,
    sharing: &Sharing,
    p: &Principal,
    kind: &'static str,
    key: &str,
) -> Result<Option<Value>, ApiError> {
    let valid = key.len() == 17
        && key.starts_with(crate::governed::key_prefix(kind))
        && key[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Ok(None);
    }
    let store = state.store.as_ref();
    let caller = Caller::new(sharing, store, p.clone()).await?;
    let golden = sharing.golden(store, kind, key).await?;
    let view = match look(sharing, store, &caller, kind, key, golden.as_deref(), &[]).await? {
        Seen::Shown(v) => v,
        Seen::Denied(e) => {
            let _ = record(sharing, vec![e]).await;
            return Ok(None);
        }
        Seen::Nothing => return Ok(None),
    };
    let mut view = view;
    // Every linked record the policy lets the caller see, one click away (what each shows is
    // decided when it is opened). A link tells what a field tells, so it is shown only when that
    // field would be; a linked person revealed this way is a read of that person, audited too.
    let person_resource = sharing.catalogue.iter().find(|r| r.id == "library.person");
    let this_resource = sharing
        .catalogue
        .iter()
        .find(|r| r.id == format!("library.{kind}"));
    let subject = tongban_sharing::policy::Subject {
        key,
        division: &view.community,
        is_caller: p.role == Role::Citizen && kind == "person" && p.user_id == key,
    };
    let shows = |resource: Option<&tongban_sharing::catalogue::Resource>,
                 field: &str,
                 s: &tongban_sharing::policy::Subject| {
        resource.is_some_and(|r| {
            matches!(
                tongban_sharing::policy::decide(p, r, field, s, caller.now, &caller.grants)
                    .decision,
                tongban_sharing::policy::Decision::Show { .. }
            )
        })
    };
    let mut links: Vec<Value> = Vec::new();
    let mut link_fields: Vec<String> = Vec::new();
    let mut linked_reads: Vec<tongban_sharing::audit::Event> = Vec::new();
    for r in store.relations_of(key).await.map_err(ApiError::internal)? {
        let outgoing = r.from_key == key;
        let other = if outgoing {
            r.to_key.clone()
        } else {
            r.from_key.clone()
        };
        let Some(other_kind) = kind_of_key(&other) else {
            continue;
        };
        use tongban_sharing::policy::LinkRule;
        let shown = match tongban_sharing::policy::link_rule(kind, &r.relation, outgoing) {
            LinkRule::Open => true,
            LinkRule::Never => false,
            LinkRule::ThisField(f) => {
                let ok = shows(this_resource, f, &subject);
                if ok && !link_fields.iter().any(|x| x == f) {
                    link_fields.push(f.to_string());
                }
                ok
            }
            LinkRule::OtherPersonField(f) => {
                // The person lives (or is registered) here, so they lie in this community.
                let them = tongban_sharing::policy::Subject {
                    key: &other,
                    division: &view.community,
                    is_caller: p.role == Role::Citizen && p.user_id == other,
                };
                let ok = shows(person_resource, f, &them);
                if ok && !linked_reads.iter().any(|e| e.subject == other) {
                    linked_reads.push(tongban_sharing::audit::Event {
                        at: caller.now,
                        actor: p.user_id.clone(),
                        action: "read.person".into(),
                        subject: other.clone(),
                        detail: json!({"department": p.department, "role": p.role,
                            "shown": [f], "masked": [], "served_under": view.served,
                            "via": format!("console link from {key}")})
                        .to_string(),
                    });
                }
                ok
            }
        };
        if shown {
            links.push(
                json!({"relation": r.relation, "outgoing": outgoing, "key": other,
                "kind": other_kind, "source": r.source_id}),
            );
        }
    }
    // The fields the links stood for are part of what this read showed.
    for f in link_fields {
        if !view.shown.contains(&f) {
            view.shown.push(f);
        }
    }
    let mut events = vec![view.event(&caller, "console")];
    events.extend(linked_reads);
    crate::governed::record_reads(sharing, &[&view], events, caller.now).await?;
    let fields: Vec<Value> = this_resource
        .map(|r| r.fields.iter().filter(|f| f.name != "key").collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| {
            let (class, class_en) = (f.class.zh(), format!("{:?}", f.class).to_lowercase());
            match view.fields.get(&f.name) {
                Some(x) if x.get("value").is_some() => Some(json!({"name": f.name, "value": x["value"],
                    "display": readable(&f.name, x["value"].as_str().unwrap_or("")),
                    "source": x.get("source"), "date": x.get("date"), "class": class, "class_en": class_en, "state": "shown"})),
                Some(x) => Some(json!({"name": f.name, "value": x["masked"], "class": class, "class_en": class_en, "state": "masked"})),
                None if view.withheld.contains(&f.name) => Some(json!({"name": f.name, "class": class, "class_en": class_en, "state": "withheld"})),
                None => None,
            }
        })
        .collect();
    links.sort_by(|a, b| {
        a["relation"]
            .as_str()
            .cmp(&b["relation"].as_str())
            .then(a["key"].as_str().cmp(&b["key"].as_str()))
    });
    links.dedup_by(|a, b| {
        a["relation"] == b["relation"] && a["key"] == b["key"] && a["outgoing"] == b["outgoing"]
    });
    Ok(Some(
        json!({"kind": kind, "key": key, "community": view.community, "fields": fields,
        "served": view.served, "exhausted": view.exhausted, "links": links,
        "masked_any": !view.masked.is_empty()}),
    ))
}

/// A shown value as people read it, when the libraries keep it as a code: an address key as an
/// address, a sex code (GB/T 2261.1) as a word. `None` when the value reads as it is.
fn readable(field: &str, value: &str) -> Option<String> {
    match field {
        "residence" | "registered_address" | "address_key" => {
            tongban_standards::address::describe_key(value)
        }
        "sex" => match value {
            "1" => Some("男 (1)".into()),
            "2" => Some("女 (2)".into()),
            _ => None,
        },
        _ => None,
    }
}

async fn page_360(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
    kind: &'static str,
    key: String,
) -> Response {
    match subject_page(&state, &sharing, &p, kind, &key).await {
        Ok(Some(ctx)) => {
            render(&headers, StatusCode::OK, "record.html", Some(&p), ctx).into_response()
        }
        Ok(None) => message(
            &headers,
            StatusCode::NOT_FOUND,
            Some(&p),
            &format!(
                "{} {} {}",
                say(&headers, "not_in_jurisdiction"),
                say(&headers, kind),
                key.chars().take(20).collect::<String>()
            ),
        )
        .into_response(),
        Err(e) => api_error_page(&headers, &p, e),
    }
}

async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
) -> Response {
    if p.role != Role::Citizen {
        return message(
            &headers,
            StatusCode::FORBIDDEN,
            Some(&p),
            say(&headers, "citizens_only_page"),
        )
        .into_response();
    }
    let record = match subject_page(&state, &sharing, &p, "person", &p.user_id.clone()).await {
        Ok(r) => r,
        Err(e) => return api_error_page(&headers, &p, e),
    };
    let accesses = match crate::governed::accesses_of(state.store.as_ref(), &p.user_id).await {
        Ok(a) => a,
        Err(e) => return api_error_page(&headers, &p, e),
    };
    let accesses: Vec<Value> = accesses
        .into_iter()
        .map(|a| {
            let mut v = json!(a);
            v["when"] = json!(when(a.at_ms));
            v
        })
        .collect();
    render(
        &headers,
        StatusCode::OK,
        "me.html",
        Some(&p),
        json!({"record": record, "accesses": accesses}),
    )
    .into_response()
}

/// A time as people in China read it (UTC+8).
fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at + 8 * 3_600_000)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

async fn grants(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
) -> Response {
    grants_page(&state, &sharing, &p, &headers, StatusCode::OK, None).await
}

async fn grants_page(
    state: &AppState,
    sharing: &Sharing,
    p: &Principal,
    headers: &HeaderMap,
    status: StatusCode,
    notice: Option<String>,
) -> Response {
    if p.role == Role::Citizen {
        return message(
            headers,
            StatusCode::FORBIDDEN,
            Some(p),
            say(headers, "grants_for_departments"),
        )
        .into_response();
    }
    let rows = match state.store.grants(None).await {
        Ok(r) => r,
        Err(e) => return api_error_page(headers, p, ApiError::internal(e)),
    };
    // The names the user's department goes by (its id and its name: catalogues name providers
    // either way).
    let mut names: Vec<String> = p.department.iter().cloned().collect();
    if let Some(d) = &p.department
        && let Ok(departments) = state.store.departments().await
        && let Some(row) = departments.into_iter().find(|x| &x.id == d)
    {
        names.push(row.name);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let provider_of = |resource: &str| {
        sharing
            .catalogue
            .iter()
            .find(|r| r.id == resource)
            .map(|r| r.provider.clone())
            .unwrap_or_default()
    };
    // A user sees their own department's requests and grants, and those made to the resources
    // their department provides (the data bureau's admins: the libraries'); they may decide the
    // latter while they wait.
    let grants: Vec<Value> = rows
        .iter()
        .filter_map(|g| {
            let provider = provider_of(&g.resource);
            let provides = tongban_sharing::policy::may_decide(&provider, &names, p.role);
            let own = p.department.as_deref() == Some(g.department.as_str());
            (own || provides).then(|| {
                json!({"id": g.id, "department": g.department, "resource": g.resource,
                    "fields": serde_json::from_str::<Value>(&g.fields).unwrap_or(json!([])),
                    "purpose": g.purpose, "legal_basis": g.legal_basis, "scope": g.scope,
                    "until": when(g.valid_to), "quota": g.daily_quota, "status": g.status,
                    "reason": g.reason, "decidable": provides && g.status == "requested"})
            })
        })
        .collect();
    let resources: Vec<Value> = sharing
        .catalogue
        .iter()
        .filter(|r| r.kind == "library")
        .map(|r| json!({"id": r.id, "title": r.title,
            "fields": r.fields.iter().filter(|f| f.class == tongban_sharing::catalogue::Class::Conditional)
                .map(|f| f.name.clone()).collect::<Vec<_>>()}))
        .collect();
    render(
        headers,
        status,
        "grants.html",
        Some(p),
        json!({"grants": grants, "resources": resources, "notice": notice}),
    )
    .into_response()
}

#[derive(serde::Deserialize)]
struct RequestForm {
    resource: String,
    #[serde(default)]
    fields: String,
    purpose: String,
    legal_basis: String,
    scope: String,
    days: u32,
    daily_quota: u32,
}

async fn request_grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
    form: FormResult<RequestForm>,
) -> Response {
    let Ok(Form(f)) = form else {
        return grants_page(
            &state,
            &sharing,
            &p,
            &headers,
            StatusCode::BAD_REQUEST,
            Some(say(&headers, "request_incomplete").into()),
        )
        .await;
    };
    let request = tongban_sharing::policy::Request {
        resource: f.resource,
        fields: f
            .fields
            .split([',', ' ', '，'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        purpose: f.purpose.trim().into(),
        legal_basis: f.legal_basis.trim().into(),
        scope: f.scope.trim().into(),
        days: f.days,
        daily_quota: f.daily_quota,
    };
    let (status, notice) = match tongban_sharing::policy::request(
        state.store.as_ref(),
        &sharing.catalogue,
        &p,
        request,
    )
    .await
    {
        Ok(g) => {
            let _ = record(&sharing, vec![admin_event(&p, "grant.request", &g.id)]).await;
            (
                StatusCode::OK,
                format!("{} {}", say(&headers, "request_filed"), g.id),
            )
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("{} {e}", say(&headers, "request_failed")),
        ),
    };
    grants_page(&state, &sharing, &p, &headers, status, Some(notice)).await
}

fn admin_event(p: &Principal, action: &str, subject: &str) -> tongban_sharing::audit::Event {
    tongban_sharing::audit::Event {
        at: tongban_store::now_millis(),
        actor: p.user_id.clone(),
        action: action.into(),
        subject: subject.into(),
        detail: json!({"department": p.department, "role": p.role, "via": "console"}).to_string(),
    }
}

#[derive(serde::Deserialize)]
struct DecideForm {
    approve: String,
    #[serde(default)]
    reason: String,
}

async fn decide_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
    form: FormResult<DecideForm>,
) -> Response {
    let Ok(Form(f)) = form else {
        return grants_page(
            &state,
            &sharing,
            &p,
            &headers,
            StatusCode::BAD_REQUEST,
            Some(say(&headers, "say_approve").into()),
        )
        .await;
    };
    let approve = f.approve == "yes";
    let (status, notice) = match tongban_sharing::policy::decide_stored(
        state.store.as_ref(),
        &sharing.catalogue,
        &p,
        &id,
        approve,
        f.reason.trim(),
    )
    .await
    {
        Ok(g) => {
            let action = if approve {
                "grant.approve"
            } else {
                "grant.reject"
            };
            let _ = record(&sharing, vec![admin_event(&p, action, &g.id)]).await;
            let done = if approve { "approved" } else { "rejected" };
            (StatusCode::OK, format!("{} {}", say(&headers, done), g.id))
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("{} {e}", say(&headers, "request_failed")),
        ),
    };
    grants_page(&state, &sharing, &p, &headers, status, Some(notice)).await
}

async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
) -> Response {
    if p.role != Role::DataBureauAdmin {
        return message(
            &headers,
            StatusCode::FORBIDDEN,
            Some(&p),
            say(&headers, "admins_only"),
        )
        .into_response();
    }
    let store = state.store.as_ref();
    let check = tongban_sharing::writer::verify_store(store, &sharing.audit.node_key()).await;
    let (entries, findings, unsealed) = match &check {
        Ok(c) => (
            c.entries,
            c.findings.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            c.unsealed,
        ),
        Err(e) => (0, vec![e.to_string()], 0),
    };
    let last = match store.last_audit().await {
        Ok(l) => l.map_or(0, |r| r.seq),
        Err(e) => return api_error_page(&headers, &p, ApiError::internal(e)),
    };
    let recent = match store.audit_entries(last - 50, 50).await {
        Ok(r) => r,
        Err(e) => return api_error_page(&headers, &p, ApiError::internal(e)),
    };
    let recent: Vec<Value> = recent
        .into_iter()
        .rev()
        .map(|r| json!({"seq": r.seq, "when": when(r.at), "actor": r.actor, "action": r.action, "subject": r.subject, "hash": r.hash.chars().take(12).collect::<String>()}))
        .collect();
    render(&headers, StatusCode::OK, "audit.html", Some(&p), json!({"entries": entries, "findings": findings, "unsealed": unsealed, "recent": recent, "ok": check.is_ok() && findings.is_empty()})).into_response()
}

/// One source's scorecard in a line: its counts, mean completeness and validity over its fields.
fn quality_row(s: &tongban_intake::quality::Scorecard) -> Value {
    let n = s.fields.len().max(1) as f64;
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    json!({"source": s.source_id, "department": s.department, "name": s.name,
        "delivered": s.delivered, "current": s.current, "quarantined": s.quarantined,
        "uniqueness": pct(s.key_uniqueness),
        "completeness": pct(s.fields.iter().map(|f| f.completeness).sum::<f64>() / n),
        "validity": pct(s.fields.iter().map(|f| f.validity).sum::<f64>() / n),
        "fresh": s.freshness.fresh})
}

async fn quality(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedIn { sharing, p }: SignedIn,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    // Quarantined records and issue examples hold raw personal data of every department's
    // feed: only the data bureau's admins see them, and each look is audited.
    if p.role != Role::DataBureauAdmin {
        return message(
            &headers,
            StatusCode::FORBIDDEN,
            Some(&p),
            say(&headers, "admins_only"),
        )
        .into_response();
    }
    let figures = sharing.dashboard.read().ok().and_then(|d| d.clone());
    let source = params
        .iter()
        .find(|(k, _)| k == "source")
        .map(|(_, v)| v.clone());
    let card = figures.as_ref().and_then(|d| {
        source
            .as_ref()
            .and_then(|s| d.quality.iter().find(|c| &c.source_id == s).cloned())
    });
    // The quarantined records of the chosen source, with their reasons and raw values.
    let held = match &card {
        Some(c) => match state
            .store
            .quarantine_list(
                Some(&c.source_id),
                Some(tongban_store::QuarantineStatus::Held),
                50,
            )
            .await
        {
            Ok(list) => list
                .into_iter()
                .map(|q| {
                    let reasons: Vec<Value> = serde_json::from_str(&q.reasons).unwrap_or_default();
                    json!({"id": q.id, "location": q.location, "key": q.key, "raw": q.raw,
                        "reasons": reasons.iter().map(|r| format!("{} {}: {}",
                            r["field"].as_str().unwrap_or(""), r["code"].as_str().unwrap_or(""),
                            r["message"].as_str().unwrap_or(""))).collect::<Vec<_>>()})
                })
                .collect::<Vec<_>>(),
            Err(e) => return api_error_page(&headers, &p, ApiError::internal(e)),
        },
        None => Vec::new(),
    };
    if let Some(c) = &card {
        let event = tongban_sharing::audit::Event {
            at: tongban_store::now_millis(),
            actor: p.user_id.clone(),
            action: "read.quality".into(),
            subject: c.source_id.clone(),
            detail: json!({"department": p.department, "role": p.role,
                "quarantined_shown": held.len(), "via": "console"})
            .to_string(),
        };
        if let Err(e) = record(&sharing, vec![event]).await {
            return api_error_page(&headers, &p, e);
        }
    }
    let ctx = json!({
        "computing": figures.is_none(),
        "sources": figures.as_ref().map(|d| d.quality.iter().map(quality_row).collect::<Vec<_>>()),
        "card": card,
        "held": held,
    });
    render(&headers, StatusCode::OK, "quality.html", Some(&p), ctx).into_response()
}

async fn alerts(headers: HeaderMap, SignedIn { sharing, p }: SignedIn) -> Response {
    if p.role != Role::DataBureauAdmin {
        return message(
            &headers,
            StatusCode::FORBIDDEN,
            Some(&p),
            say(&headers, "admins_only"),
        )
        .into_response();
    }
    let figures = sharing.dashboard.read().ok().and_then(|d| d.clone());
    let alerts: Vec<Value> = figures
        .as_ref()
        .map(|d| {
            d.alerts
                .iter()
                .map(|a| {
                    json!({"day": dashboard::date_of_day(a.day), "user": a.user, "kind": a.kind,
                    "message": a.message, "grants": a.grants})
                })
                .collect()
        })
        .unwrap_or_default();
    render(
        &headers,
        StatusCode::OK,
        "alerts.html",
        Some(&p),
        json!({"computing": figures.is_none(), "alerts": alerts}),
    )
    .into_response()
}

async fn catalogue(headers: HeaderMap, SignedIn { sharing, p }: SignedIn) -> Response {
    let resources: Vec<Value> = sharing
        .catalogue
        .iter()
        .map(|r| json!({"id": r.id, "title": r.title, "kind": r.kind, "provider": r.provider,
            "frequency": r.update_frequency, "last_update": r.last_update.map(when),
            "shared": format!("{:.0}%", r.shared_share() * 100.0),
            "fields": r.fields.iter().map(|f| json!({"name": f.name, "class": f.class.zh(),
                "class_en": format!("{:?}", f.class).to_lowercase(),
                "sensitivity": format!("{:?}", f.sensitivity).to_lowercase()})).collect::<Vec<_>>()}))
        .collect();
    render(
        &headers,
        StatusCode::OK,
        "catalogue.html",
        Some(&p),
        json!({"resources": resources}),
    )
    .into_response()
}

/// Recompute the dashboard's figures now and then, for as long as the server runs.
pub async fn keep_dashboard_fresh(state: AppState) {
    loop {
        refresh(&state).await;
        tokio::time::sleep(std::time::Duration::from_millis(dashboard::REFRESH_MS)).await;
    }
}

/// Recompute the dashboard's figures once and, if the server is told to, suspend the grants
/// today's alerts call for. Returns the grants suspended.
pub async fn refresh(state: &AppState) -> Vec<String> {
    let Some(sharing) = state.sharing.clone() else {
        return Vec::new();
    };
    // Ages are counted on today's date in China Standard Time.
    let now = tongban_store::now_millis();
    let today = chrono::DateTime::from_timestamp_millis(now + 8 * 3_600_000)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    let previous = sharing.dashboard.read().ok().and_then(|d| d.clone());
    let figures = match dashboard::compute(state.store.as_ref(), today, previous.as_deref()).await {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("dashboard: {e}");
            return Vec::new();
        }
    };
    if let Ok(mut slot) = sharing.dashboard.write() {
        *slot = Some(figures.clone());
    }
    if !sharing
        .suspend_on_alert
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Vec::new();
    }
    // The watch acts for the data bureau, which may revoke any grant.
    let watch = Principal {
        user_id: "tongban-watch".into(),
        name: "自动监测".into(),
        department: Some("data_bureau".into()),
        role: Role::DataBureauAdmin,
        jurisdiction: String::new(),
        token_id: String::new(),
    };
    let day = tongban_sharing::watch::day_of(now);
    let mut suspended = Vec::new();
    for (grant, reason) in tongban_sharing::watch::grants_to_suspend(&figures.alerts, day, false) {
        // A grant already revoked (by an earlier round, or by hand) is left as it is.
        let Ok(g) = tongban_sharing::policy::revoke_stored(
            state.store.as_ref(),
            &sharing.catalogue,
            &watch,
            &grant,
            &reason,
        )
        .await
        else {
            continue;
        };
        let event = tongban_sharing::audit::Event {
            at: tongban_store::now_millis(),
            actor: watch.user_id.clone(),
            action: "grant.suspend".into(),
            subject: g.id.clone(),
            detail: json!({"reason": reason}).to_string(),
        };
        if let Err(e) = record(&sharing, vec![event]).await {
            eprintln!(
                "watch: grant {} suspended but not recorded: {}",
                g.id, e.message
            );
        }
        suspended.push(g.id);
    }
    suspended
}
