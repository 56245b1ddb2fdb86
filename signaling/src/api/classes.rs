//! Classes: `POST/GET /classes`, `GET/PATCH/DELETE /classes/{id}`, and tokens for one person
//! (`POST /classes/{id}/tokens`).
//!
//! Who may: the admin key and admin accounts everything; a signed-in teacher creates classes
//! (which record her as their owner) and lists, reads, renames, deletes and mints links for her
//! own classes only (403 `forbidden` for another's); without credentials, only class creation
//! where `open_class_creation` is on (401 otherwise).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{link, lock_store, ApiError, Link};
use crate::accounts::caller::{Caller, MaybeCaller};
use crate::app::{unix_millis, App};
use crate::protocol::{PeerInfo, Role, Topology};
use crate::state::lock;
use crate::store::ClassRecord;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClass {
    name: String,
    /// Absent: the server's `[sfu] default_topology`.
    #[serde(default)]
    topology: Option<Topology>,
}

#[derive(Debug, Serialize)]
pub struct CreatedClass {
    id: String,
    name: String,
    topology: Topology,
    created_at: u64,
    teacher: Link,
    student: Link,
}

#[derive(Debug, Serialize)]
pub struct ClassSummary {
    id: String,
    name: String,
    topology: Topology,
    created_at: u64,
    /// People in the class now (including those waiting to resume).
    peers: usize,
    locked: bool,
    /// The class's waiting room is on: new students wait to be let in.
    waiting_room: bool,
    /// The lesson ended and no teacher has started it again.
    ended: bool,
    /// The id of the account that owns the class; `null` for one created with the admin key.
    owner: Option<String>,
    /// People waiting to be let in (or for the lesson to start) now.
    waiting: usize,
    /// The class's student link and class code let students in (its `shared_links` setting);
    /// when false only personal links from the class list do.
    shared_links: bool,
}

#[derive(Debug, Serialize)]
pub struct ClassDetail {
    #[serde(flatten)]
    summary: ClassSummary,
    roster: Vec<PeerInfo>,
}

const MAX_CLASS_NAME: usize = 100;

/// `POST /api/v1/classes`: a signed-in account (which becomes the owner) or the admin key;
/// without credentials only where open class creation is on (then the per-IP rate and the
/// class cap apply), 401 otherwise.
pub(super) async fn create_class(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    body: Result<Json<CreateClass>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedClass>), ApiError> {
    let open = caller.is_none();
    if open && !app.open_class_creation {
        return Err(ApiError::Unauthorized);
    }
    let owner = caller
        .as_ref()
        .and_then(Caller::account)
        .map(|a| a.id.clone());
    let idempotency_key = idempotency_key(&headers)?;
    let Json(req) = body?;
    let name = class_name(&req.name)?;
    let now = unix_millis() / 1000;
    // The admin key is one caller, each account another; each address is its own caller for
    // open creation.
    let caller = match (&owner, open) {
        (Some(account), _) => format!("account:{account}"),
        (None, true) => format!("ip:{}", peer.ip()),
        (None, false) => "admin".to_string(),
    };
    let keys_since = now.saturating_sub(app.idempotency.ttl_secs);
    let store = lock_store(&app);
    if let Some(key) = &idempotency_key {
        if let Some(earlier) = store.idempotent_class(&caller, key, keys_since)? {
            if earlier.name != name || req.topology.is_some_and(|t| t != earlier.topology) {
                return Err(ApiError::Conflict(
                    "this Idempotency-Key was used for a class with another name or topology"
                        .into(),
                ));
            }
            drop(store);
            // The same class again (links minted afresh), with 200 instead of 201.
            return Ok((StatusCode::OK, Json(created_answer(&app, earlier))));
        }
    }
    if open {
        let classes = lock(&app.core).hub.class_count();
        if classes >= app.open_creation_max_classes {
            return Err(ApiError::ClassLimit(classes));
        }
        app.open_creations
            .take(peer.ip(), Instant::now())
            .map_err(|retry_after| ApiError::Throttled {
                what: "too many classes created from this address",
                retry_after,
            })?;
    }
    let record = ClassRecord {
        id: new_class_id(),
        name,
        created_at: now,
        topology: req.topology.unwrap_or(app.default_topology),
        owner,
    };
    match &idempotency_key {
        Some(key) => {
            store.insert_idempotent(&record, &caller, key, keys_since, app.idempotency.max_keys)?
        }
        None => store.insert(&record)?,
    }
    drop(store);
    lock(&app.core)
        .hub
        .add_class(record.id.clone(), record.name.clone(), record.topology);
    tracing::info!(class = %record.id, "class created");
    Ok((StatusCode::CREATED, Json(created_answer(&app, record))))
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The request's `Idempotency-Key`: 1 to 128 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_string()))
        }
        _ => Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        ))),
    }
}

/// The answer to a class creation: the class and fresh teacher and student links.
fn created_answer(app: &App, record: ClassRecord) -> CreatedClass {
    let teacher = link(app, &record.id, Role::Teacher, None, app.token_ttl_secs);
    let student = link(app, &record.id, Role::Student, None, app.token_ttl_secs);
    CreatedClass {
        id: record.id,
        name: record.name,
        topology: record.topology,
        created_at: record.created_at,
        teacher,
        student,
    }
}

/// `GET /api/v1/classes`: every class for admins, her own for a teacher.
pub(super) async fn list_classes(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<ClassSummary>>, ApiError> {
    let (mut records, closed) = {
        let store = lock_store(&app);
        let closed: HashSet<String> = store.classes_without_shared_links()?.into_iter().collect();
        (store.list()?, closed)
    };
    records.retain(|r| caller.may_manage(r));
    let core = lock(&app.core);
    Ok(Json(
        records
            .into_iter()
            .map(|r| {
                let shared = !closed.contains(&r.id);
                summary(&core.hub, r, shared)
            })
            .collect(),
    ))
}

/// The stored class `id`, if the caller may manage it (404 when there is none, 403 when it is
/// another teacher's).
fn managed_class(app: &App, caller: &Caller, id: &str) -> Result<ClassRecord, ApiError> {
    let record = lock_store(app)
        .get(id)?
        .ok_or_else(|| ApiError::NotFound(id.to_string()))?;
    caller.require_manage(&record)?;
    Ok(record)
}

pub(super) async fn get_class(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ClassDetail>, ApiError> {
    let record = managed_class(&app, &caller, &id)?;
    let shared = lock_store(&app).shared_links(&id)?;
    let core = lock(&app.core);
    let roster = core.hub.roster(&id).unwrap_or_default();
    Ok(Json(ClassDetail {
        summary: summary(&core.hub, record, shared),
        roster,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameClass {
    name: String,
}

/// `PATCH /api/v1/classes/{id}` with `{"name"}`: renames the class (links stay valid).
pub(super) async fn rename_class(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<RenameClass>, JsonRejection>,
) -> Result<Json<ClassSummary>, ApiError> {
    let Json(req) = body?;
    let name = class_name(&req.name)?;
    let mut record = managed_class(&app, &caller, &id)?;
    record.name = name;
    let shared = {
        let store = lock_store(&app);
        if !store.update(&record)? {
            return Err(ApiError::NotFound(id));
        }
        store.shared_links(&id)?
    };
    let mut core = lock(&app.core);
    core.hub.rename_class(&id, record.name.clone());
    tracing::info!(class = %id, "class renamed");
    Ok(Json(summary(&core.hub, record, shared)))
}

/// A class name as stored: trimmed, 1 to 100 characters, no control characters.
fn class_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim().to_string();
    if name.is_empty()
        || name.chars().count() > MAX_CLASS_NAME
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(format!(
            "the class name must be 1 to {MAX_CLASS_NAME} characters, without control characters"
        )));
    }
    Ok(name)
}

/// `DELETE /api/v1/classes/{id}`: ends the class for everyone in it and forgets it.
pub(super) async fn delete_class(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match lock_store(&app).get(&id)? {
        Some(record) => caller.require_manage(&record)?,
        // A class only live in the hub (no record): admins only.
        None if !caller.is_admin() => return Err(ApiError::NotFound(id)),
        None => {}
    }
    let existed = lock_store(&app).delete(&id)?;
    let mut core = lock(&app.core);
    let live = core.hub.remove_class(&id);
    if !existed && live.is_none() {
        return Err(ApiError::NotFound(id));
    }
    app.apply(&mut core, live.unwrap_or_default());
    tracing::info!(class = %id, "class deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    role: Role,
    /// Fixes the display name of whoever joins with this token.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// `POST /api/v1/classes/{id}/tokens`: a token for one person, e.g. with a fixed name.
pub(super) async fn create_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Link>), ApiError> {
    let Json(req) = body?;
    managed_class(&app, &caller, &id)?;
    let ttl = req.ttl_secs.unwrap_or(app.token_ttl_secs);
    if ttl == 0 || ttl > 366 * 24 * 3600 {
        return Err(ApiError::BadRequest(
            "ttl_secs must be between 1 and one year".into(),
        ));
    }
    // The same rules as a name typed in `join`, so a token never fixes a name the hub refuses.
    let max_name = lock(&app.core).hub.limits().max_name_len;
    let name = req
        .name
        .map(|n| crate::text::display_name(&n, max_name))
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(link(&app, &id, req.role, name, ttl)),
    ))
}

fn summary(hub: &crate::hub::Hub, r: ClassRecord, shared_links: bool) -> ClassSummary {
    ClassSummary {
        shared_links,
        peers: hub.roster(&r.id).map(|p| p.len()).unwrap_or(0),
        locked: hub.class_info(&r.id).map(|c| c.locked).unwrap_or(false),
        waiting_room: hub.class_info(&r.id).is_some_and(|c| c.waiting_room),
        ended: hub.class_info(&r.id).is_some_and(|c| c.ended),
        waiting: hub.waiting_in(&r.id),
        id: r.id,
        name: r.name,
        topology: r.topology,
        created_at: r.created_at,
        owner: r.owner,
    }
}

/// A class id: 10 characters from an alphabet without look-alikes, easy to read out in class.
fn new_class_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    rand::random::<[u8; 10]>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
