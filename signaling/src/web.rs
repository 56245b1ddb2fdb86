//! Serves the browser client, embedded in the binary so a school deploys one file.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

static WEB_CLIENT: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web-client");

/// Pages with an HTML file of their own (staff sign-in, choosing a password, a teacher's
/// "My classes"); every other page route is the single-page client in `index.html`.
const OWN_PAGES: &[(&str, &str)] = &[
    ("signin", "signin.html"),
    ("setup", "setup.html"),
    ("classes", "classes.html"),
];

/// `GET /<path>`: a file of the web client; `OWN_PAGES` get their own pages, other
/// page routes without an extension get `index.html`.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    if let Some((_, page)) = OWN_PAGES.iter().find(|(route, _)| *route == path) {
        if let Some(file) = WEB_CLIENT.get_file(page) {
            return file_response(page, file.contents());
        }
    }
    if let Some(file) = WEB_CLIENT.get_file(path) {
        return file_response(path, file.contents());
    }
    let is_page = !path.rsplit('/').next().unwrap_or("").contains('.');
    match WEB_CLIENT.get_file("index.html") {
        Some(index) if is_page => file_response("index.html", index.contents()),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn file_response(path: &str, body: &'static [u8]) -> Response {
    let content_type = match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
