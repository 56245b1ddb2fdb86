//! The documents people build on name everything the code defines: every message type, error
//! code, enum value and field of the protocol schema is on `docs/protocol.md`, and every metric the
//! server exports is on `docs/metrics.md` with its type (read from the sources, and scraped from
//! `/metrics` of the real binary after a class has been used); and every repository path the
//! architecture map, the metrics page and the decision records name exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// What the protocol schema defines that a client has to be told.
#[derive(Default)]
struct SchemaNames {
    message_types: BTreeSet<String>,
    error_codes: BTreeSet<String>,
    /// Every other `const` or `enum` value, and the values a description lists in backticks.
    values: BTreeSet<String>,
    fields: BTreeSet<String>,
}

fn schema_names(schema: &Value) -> SchemaNames {
    let mut names = SchemaNames::default();
    for (def, body) in schema["$defs"].as_object().expect("the schema has $defs") {
        walk(body, def.contains("ErrorCode"), &mut names);
    }
    names
}

fn walk(v: &Value, in_error_code: bool, names: &mut SchemaNames) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(c)) = map.get("const") {
                let set = if in_error_code {
                    &mut names.error_codes
                } else {
                    &mut names.values
                };
                set.insert(c.clone());
            }
            if let Some(Value::String(t)) =
                map.get("properties").and_then(|p| p["type"].get("const"))
            {
                names.message_types.insert(t.clone());
            }
            if let Some(Value::Array(values)) = map.get("enum") {
                names
                    .values
                    .extend(values.iter().filter_map(|v| v.as_str().map(str::to_owned)));
            }
            if let Some(Value::Object(props)) = map.get("properties") {
                names.fields.extend(props.keys().cloned());
            }
            if let Some(Value::String(d)) = map.get("description") {
                names.values.extend(
                    d.split('`')
                        .skip(1)
                        .step_by(2)
                        .filter(|t| is_value_like(t))
                        .map(str::to_owned),
                );
            }
            for (key, child) in map {
                if key != "const" {
                    walk(child, in_error_code, names);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, in_error_code, names)),
        _ => {}
    }
}

/// `timeout`, `peer_left`: a wire value, not a type name or a path.
fn is_value_like(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_lowercase())
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn quoted(page: &str, v: &str) -> bool {
    page.contains(&format!("`{v}`")) || page.contains(&format!("\"{v}\""))
}

/// `word` occurs with no letter, digit or `_` on either side.
fn whole_word(page: &str, word: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '_';
    page.match_indices(word)
        .any(|(i, _)| !page[..i].ends_with(part) && !page[i + word.len()..].starts_with(part))
}

/// The lines of the section that starts with `heading`, up to the next heading of its level.
fn section<'a>(page: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.split(' ').next().unwrap();
    page.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !(l.starts_with(level) && l[level.len()..].starts_with(' ')))
        .collect()
}

/// The rows of the first table among `lines`.
fn first_table<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .copied()
        .collect()
}

/// The backticked names in the first cell of each table row.
fn first_cells<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .collect()
}

#[test]
fn the_protocol_page_names_everything_the_schema_defines() {
    let schema: Value = serde_json::from_str(&read("docs/protocol.schema.json")).unwrap();
    let page = read("docs/protocol.md");
    let names = schema_names(&schema);
    assert!(names.message_types.len() > 20 && names.error_codes.len() > 20);

    let errors_table = first_cells(&section(&page, "## Errors"));
    let mut missing = Vec::new();
    for t in &names.message_types {
        // `hand`, `peer_joined {peer}` or `"type": "hand"`.
        if !quoted(&page, t) && !page.contains(&format!("`{t} ")) {
            missing.push(format!("message type `{t}`"));
        }
    }
    for c in &names.error_codes {
        if !errors_table.contains(&c.as_str()) {
            missing.push(format!("error code `{c}` (a row of the Errors table)"));
        }
    }
    for v in &names.values {
        if !quoted(&page, v) {
            missing.push(format!("value `{v}`"));
        }
    }
    // `client` and `server` are the schema's wrapper, not fields on the wire.
    for f in names
        .fields
        .iter()
        .filter(|f| !["client", "server"].contains(&f.as_str()))
    {
        if !whole_word(&page, f) {
            missing.push(format!("field `{f}`"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/protocol.md does not mention: {}",
        missing.join(", ")
    );

    // And the page documents no code or client message the schema lacks.
    let stale: Vec<_> = errors_table
        .iter()
        .filter(|c| !names.error_codes.contains(**c))
        .collect();
    assert!(stale.is_empty(), "error codes not in the schema: {stale:?}");
    let client_types: BTreeSet<&str> = schema["$defs"]["ClientMessage"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["properties"]["type"]["const"].as_str())
        .collect();
    let table = first_cells(&first_table(&section(&page, "## Messages")));
    let stale: Vec<_> = table
        .iter()
        .filter(|t| !client_types.contains(**t))
        .collect();
    assert!(
        stale.is_empty(),
        "client messages in the table but not the schema: {stale:?}"
    );
}

/// `docs/metrics.md`'s tables: metric name → type (`counter` or `gauge`).
fn documented_metrics() -> BTreeMap<String, String> {
    let page = read("docs/metrics.md");
    let mut out = BTreeMap::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with("`aula_") {
            continue;
        }
        let name = cells[1].trim_matches('`').to_owned();
        out.insert(name, cells[2].to_owned());
    }
    assert!(
        out.len() > 20,
        "docs/metrics.md lists {} metrics",
        out.len()
    );
    out
}

/// Every `"aula_…"` string literal in the Rust sources outside test folders: the metric names.
fn metric_literals(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !["target", "tests", "node_modules", "web-client"].contains(&name.as_str())
                && !name.starts_with('.')
            {
                metric_literals(&path, out);
            }
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("\"aula_").skip(1) {
                let end = piece
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
                if let Some(end) = end.filter(|&e| piece[e..].starts_with('"')) {
                    out.insert(format!("aula_{}", &piece[..end]));
                }
            }
        }
    }
}

#[test]
fn every_metric_name_in_the_sources_is_documented_and_every_documented_one_exists() {
    let documented = documented_metrics();
    let mut in_sources = BTreeSet::new();
    metric_literals(&repo(), &mut in_sources);
    assert!(in_sources.len() > 20, "found only {in_sources:?}");
    let undocumented: Vec<_> = in_sources
        .iter()
        .filter(|n| !documented.contains_key(*n))
        .collect();
    assert!(
        undocumented.is_empty(),
        "metrics missing from docs/metrics.md: {undocumented:?}"
    );
    let stale: Vec<_> = documented
        .keys()
        .filter(|n| !in_sources.contains(*n))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/metrics.md lists metrics no source exports: {stale:?}"
    );
}

const METRICS_TOKEN: &str = "docs-metrics-token-0123456789";

fn scrape(aula: &Aula) -> String {
    let mut resp = ureq::get(&aula.http("/metrics"))
        .header("authorization", &format!("Bearer {METRICS_TOKEN}"))
        .call()
        .unwrap();
    resp.body_mut().read_to_string().unwrap()
}

#[tokio::test]
async fn every_series_a_used_server_exports_is_documented_with_its_type() {
    let aula = AulaBuilder::new(&temp_dir("docs-metrics"))
        .env("AULA_METRICS_TOKEN", METRICS_TOKEN)
        .start();
    // Use a class: joins, messages both ways, an error, an SFU subscription, a wrong admin key.
    let class = aula.create_class_with_topology("Metrics", "sfu");
    let mut teacher = Client::join(&aula, class["teacher"]["token"].as_str().unwrap(), "T").await;
    let mut ana = Client::join(&aula, class["student"]["token"].as_str().unwrap(), "Ana").await;
    teacher.send(json!({"type": "chat", "text": "hello"})).await;
    ana.expect("chat").await;
    ana.send(json!({"type": "lock", "locked": true})).await;
    ana.expect_error("forbidden").await;
    ana.send(json!({"type": "subscribe"})).await;
    assert_eq!(ana.expect("offer").await["from"], "sfu");
    let (status, _) = http(
        &aula,
        "GET",
        "/api/v1/classes",
        None,
        Some("wrong-key-0123456789"),
    );
    assert_eq!(status, 401);
    // The SFU and TURN gauges are exported once a second.
    let mut body = String::new();
    for _ in 0..50 {
        body = scrape(&aula);
        if body.contains("aula_sfu_subscribers") && body.contains("aula_turn_allocations") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let exported: BTreeMap<&str, &str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    for expected in [
        "aula_joins_total",
        "aula_sfu_subscribers",
        "aula_turn_allocations",
    ] {
        assert!(exported.contains_key(expected), "{expected} not in {body}");
    }
    let documented = documented_metrics();
    let wrong: Vec<String> = exported
        .iter()
        .filter(|(name, kind)| documented.get(**name).map(String::as_str) != Some(**kind))
        .map(|(name, kind)| format!("{name} ({kind})"))
        .collect();
    assert!(
        wrong.is_empty(),
        "exported but not in docs/metrics.md with this type: {wrong:?}"
    );
}

/// The backticked repository paths of a page: `signaling/src/hub.rs`, `relay/src/sfu/`,
/// `tests/e2e/*.test.mjs` (checked up to the `*`). URLs, routes and runtime paths are skipped.
fn repo_paths(page: &str) -> Vec<&str> {
    const EXTENSIONS: [&str; 8] = [".rs", ".js", ".mjs", ".md", ".json", ".toml", ".sh", "/"];
    page.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.contains('/') && !t.starts_with('/') && !t.contains("://"))
        .filter(|t| !t.contains(|c: char| c.is_whitespace() || "{}<>#?:".contains(c)))
        .filter(|t| EXTENSIONS.iter().any(|e| t.ends_with(e)))
        .collect()
}

#[test]
fn the_architecture_map_and_the_decisions_name_only_files_that_exist() {
    let mut pages = vec![
        "docs/architecture.md".to_owned(),
        "docs/metrics.md".to_owned(),
    ];
    for entry in std::fs::read_dir(repo().join("docs/decisions")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        pages.push(format!("docs/decisions/{name}"));
    }
    let mut missing = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = read(page);
        for path in repo_paths(&text) {
            checked += 1;
            // From the repository root, or (a link's text) from the page's folder.
            let existing = path.split('*').next().unwrap();
            let folder = Path::new(page).parent().unwrap();
            if !repo().join(existing).exists() && !repo().join(folder).join(existing).exists() {
                missing.push(format!("{page}: {path}"));
            }
        }
    }
    assert!(checked > 30, "only {checked} paths found");
    assert!(missing.is_empty(), "paths that do not exist: {missing:#?}");
}
