//! The OpenAPI document. Paths are collected from the routes themselves
//! (utoipa-actix-web), so a route cannot be served without being documented;
//! [`complete`] then adds the answers every route shares (401 when signed in,
//! the body's 400/408/413/415/422, the path's 404, 500 and 503), so no
//! operation can forget one, and gives every error response the schema of its
//! own status: the shared body, with exactly the codes that status carries.

use actix_web::{HttpResponse, http::StatusCode, web};
use serde_json::{Value, json};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_actix_web::AppExt;

use crate::{error::Code, http::METHODS};

#[derive(OpenApi)]
#[openapi(
    info(title = "Kith API", description = "Referral network and peer consultation for therapists."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The complete document, as `/api/v1/openapi.json` serves it.
pub fn document() -> Value {
    let doc = actix_web::App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(crate::api::api_v1)
        .split_for_parts()
        .1;
    // utoipa's document is plain data; serializing it cannot fail.
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    complete(&mut doc);
    doc
}

/// Lists the installed vocabulary's slugs in the document's slug schemas.
pub fn with_taxonomy(doc: &mut Value, taxonomy: &crate::profiles::taxonomy::Taxonomy) {
    use crate::profiles::taxonomy::Kind;
    for kind in Kind::ALL {
        let slugs: Vec<&str> = taxonomy
            .terms(kind)
            .iter()
            .map(|t| t.slug.as_str())
            .collect();
        let schema = &mut doc["components"]["schemas"][kind.schema_name()];
        if schema.is_object() && !slugs.is_empty() {
            schema["enum"] = json!(slugs);
        }
    }
}

pub async fn serve(doc: web::Data<Value>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}

/// Adds the shared answers to every operation and the per-status error schemas.
fn complete(doc: &mut Value) {
    let mut statuses: Vec<u16> = Code::ALL.iter().map(|c| c.status().as_u16()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let schemas = &mut doc["components"]["schemas"];
    let body = schemas["ErrorBody"].clone();
    for status in &statuses {
        let codes: Vec<&str> = Code::ALL
            .iter()
            .filter(|c| c.status().as_u16() == *status)
            .map(|c| c.as_str())
            .collect();
        let mut schema = body.clone();
        schema["properties"]["error"] = json!({
            "type": "string",
            "enum": codes,
            "description": "Stable machine-readable code; the README says what each means.",
        });
        schemas[format!("Error{status}")] = schema;
    }

    strings_hold_no_nul(&mut doc["components"]["schemas"]);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                if let Some(params) = op.get_mut("parameters") {
                    strings_hold_no_nul(params);
                }
                complete_operation(op, &statuses);
            }
        }
    }
}

/// Every string the API takes is refused if it holds a NUL (see `text`):
/// a string schema with no pattern, format or list of values says so.
fn strings_hold_no_nul(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let is_string = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let constrained = ["pattern", "format", "enum", "const"]
                .iter()
                .any(|k| map.contains_key(*k));
            if is_string && !constrained {
                map.insert("pattern".into(), json!("^[^\\u0000]*$"));
            }
            map.values_mut().for_each(strings_hold_no_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(strings_hold_no_nul),
        _ => {}
    }
}

fn complete_operation(op: &mut Value, statuses: &[u16]) {
    let signed_in = op["security"].as_array().is_some_and(|s| {
        s.iter()
            .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
    });
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let in_ = |place: &str| params.iter().any(|p| p["in"] == place);
    let has_body = op.get("requestBody").is_some();

    let mut shared: Vec<(u16, &str)> = vec![
        (500, "A failure of ours; the cause is logged, never sent."),
        (
            503,
            "The database (or the search engine) is not reachable, or the request took too long; retry after `Retry-After` seconds.",
        ),
    ];
    if signed_in {
        shared.push((
            401,
            "No bearer token, or one that is invalid or expired, or whose sign-in ended.",
        ));
    }
    if has_body {
        shared.extend([
            (400, "The body is not valid JSON."),
            (
                408,
                "The body did not arrive in time; the connection is closed.",
            ),
            (413, "The body is over the route's limit."),
            (415, "The body is not sent as `application/json`."),
            (422, "A field is missing or invalid; `field` names it."),
        ]);
    }
    if in_("query") {
        shared.push((422, "A query parameter is invalid; `field` names it."));
    }
    if in_("path") {
        shared.push((
            404,
            "Nothing at this address, or nothing this person may see.",
        ));
    }
    if !op["responses"].is_object() {
        op["responses"] = json!({});
    }
    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    for (status, description) in shared {
        responses
            .entry(status.to_string())
            .or_insert_with(|| json!({ "description": description }));
    }
    for (status, response) in responses.iter_mut() {
        let Ok(code) = status.parse::<u16>() else {
            continue;
        };
        if code < 400 {
            continue;
        }
        let schema = if statuses.contains(&code) {
            format!("#/components/schemas/Error{code}")
        } else {
            "#/components/schemas/ErrorBody".to_string()
        };
        response["content"] = json!({ "application/json": { "schema": { "$ref": schema } } });
        if code == 429 || code == 503 {
            response["headers"]["Retry-After"] = json!({
                "description": "Seconds to wait before trying again.",
                "schema": { "type": "integer", "minimum": 1 },
            });
        }
        if response.get("description").is_none_or(|d| d == "") {
            response["description"] = json!(
                StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("Error")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    /// Two types with one schema name share one entry in the document, and
    /// one of them is documented wrongly (two `ScheduleInput`s once did).
    #[test]
    fn every_schema_name_is_one_type() {
        fn sources(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(std::fs::read_to_string(&path).unwrap_or_default());
                }
            }
        }
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut seen = std::collections::HashMap::new();
        for text in &files {
            let mut derives_schema = false;
            for line in text.lines() {
                let line = line.trim();
                if line.starts_with("#[derive(") && line.contains("ToSchema") {
                    derives_schema = true;
                } else if derives_schema
                    && let Some(rest) = ["pub struct ", "pub enum ", "struct ", "enum "]
                        .iter()
                        .find_map(|k| line.strip_prefix(k))
                {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    *seen.entry(name).or_insert(0) += 1;
                    derives_schema = false;
                } else if !line.starts_with("#[") && !line.starts_with("///") && !line.is_empty() {
                    derives_schema = false;
                }
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "schema names used by two types: {twice:?}"
        );
        assert!(
            seen.len() > 50,
            "the scan found only {} schemas",
            seen.len()
        );
    }
}
