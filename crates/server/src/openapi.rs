//! The OpenAPI 3.1 description of the HTTP API, served at `/api/openapi.json`.
//!
//! Written by hand rather than derived, because the answers of the governed endpoints are
//! shaped by the policy at run time (a field may come back whole, masked or not at all), which
//! a derived schema would describe wrongly. A test checks that every route the router serves
//! under `/api` is described here.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn governed_read(kind: &str, prefix: &str) -> Value {
    json!({"get": {
        "summary": format!("One {kind} of the base libraries, under the caller's grants and jurisdiction"),
        "description": "Every field is decided by the policy: shown with its provenance, masked, or listed under `withheld`. The read is recorded in the audit log before it is answered; the answer names the grants and purposes it was served under. An unknown key and a key outside the caller's jurisdiction get the same 404.",
        "security": [{"token": []}],
        "parameters": [{"name": "key", "in": "path", "required": true,
            "schema": {"type": "string", "pattern": format!("^{prefix}[0-9a-f]{{16}}$")}}],
        "responses": {
            "200": {"description": "The record as the caller may see it",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GovernedRecord"}}}},
            "400": error_response("The key is malformed"),
            "401": error_response("No token, or a token that is malformed, wrong, expired or revoked"),
            "404": error_response("No such key within the caller's jurisdiction"),
            "503": error_response("The read could not be recorded in the audit log, so it is not answered"),
        }
    }})
}

fn governed_search(kind: &str, params: &[(&str, &str)], forms: &str) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false,
            "description": description, "schema": {"type": "string", "maxLength": 200}})
        })
        .collect();
    json!({"get": {
        "summary": format!("Search {kind} records: {forms}"),
        "description": "Values are read as the libraries keep them (a name cleaned, a phone made canonical, an address turned into its key). A result is returned only if the caller may see the fields the search matched, and each result is decided field by field as a read by key is. The search and every result returned are recorded in the audit log before the answer. At most 20 results; `truncated` says there were more.",
        "security": [{"token": []}],
        "parameters": parameters,
        "responses": {
            "200": {"description": "The results as the caller may see them",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Results"}}}},
            "400": error_response("An unknown parameter, a combination that is not a search, or a value that cannot be read (the message names it)"),
            "401": error_response("No token, or a token that is malformed, wrong, expired or revoked"),
            "503": error_response("The reads could not be recorded in the audit log, so they are not answered"),
        }
    }})
}

fn governed_bulk(kind: &str, prefix: &str) -> Value {
    json!({"post": {
        "summary": format!("Up to 100 {kind} records by key in one request"),
        "description": "Each key is read as `GET …/{key}` would read it, and all the reads are recorded in the audit log in one batch before the answer. Keys unknown or outside the caller's jurisdiction are listed under `not_found`.",
        "security": [{"token": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["keys"], "additionalProperties": false,
            "properties": {"keys": {"type": "array", "minItems": 1, "maxItems": 100,
                "items": {"type": "string", "pattern": format!("^{prefix}[0-9a-f]{{16}}$")}}}}}}},
        "responses": {
            "200": {"description": "The records found, as the caller may see them",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Results"}}}},
            "400": error_response("The body is not `{\"keys\": [...]}` with 1 to 100 well-formed keys"),
            "401": error_response("No token, or a token that is malformed, wrong, expired or revoked"),
            "413": error_response("The body is larger than 64 KiB"),
            "503": error_response("The reads could not be recorded in the audit log, so they are not answered"),
        }
    }})
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Tongban 通办", "version": env!("CARGO_PKG_VERSION"),
            "description": "Governed reads and searches of the base libraries (人口库 · 法人库 · 房屋库), citizens' access log, and the intake push endpoint. Swagger UI for this document is at /api/docs."},
        "servers": [{"url": "/"}],
        "paths": {
            "/api/persons": governed_search("person", &[
                ("name", "With birth_date: a person's name (traditional characters and spaces are normalised)"),
                ("birth_date", "With name: a date such as 1990-01-02 or 1990年1月2日"),
                ("phone", "Alone: a mobile or landline number"),
                ("citizen_id", "Alone: an 18- or 15-digit citizen id"),
                ("address", "Alone: the address of a room; its registered or actual residents (the district may be left out by a caller whose jurisdiction lies within one)"),
            ], "by name and birth date, by phone, by citizen id or by address"),
            "/api/entities": governed_search("legal entity", &[
                ("name", "Alone: the registered name"),
                ("credit_code", "Alone: the unified social credit code"),
            ], "by name or by credit code"),
            "/api/rooms": governed_search("room", &[("address", "The room's address (the district may be left out by a caller whose jurisdiction lies within one)")], "by address"),
            "/api/buildings": governed_search("building", &[("address", "An address in the building (the district may be left out by a caller whose jurisdiction lies within one)")], "by address"),
            "/api/persons/lookup": governed_bulk("person", "P"),
            "/api/entities/lookup": governed_bulk("legal entity", "E"),
            "/api/rooms/lookup": governed_bulk("room", "R"),
            "/api/buildings/lookup": governed_bulk("building", "B"),
            "/api/persons/{key}": governed_read("person", "P"),
            "/api/entities/{key}": governed_read("legal entity", "E"),
            "/api/rooms/{key}": governed_read("room", "R"),
            "/api/buildings/{key}": governed_read("building", "B"),
            "/api/me/accesses": {"get": {
                "summary": "Who read the calling citizen's record: when (`at`, RFC 3339 in China Standard Time), user, department, role, fields, grant and purpose",
                "security": [{"token": []}],
                "responses": {
                    "200": {"description": "The reads, newest first", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": error_response("No valid token"),
                    "403": error_response("The caller is not a citizen"),
                }
            }},
            "/api/intake/{source}/batches": {"post": {
                "summary": "Push a batch of NDJSON records for a registered source",
                "security": [{"intake_key": []}],
                "parameters": [{"name": "source", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"}}],
                "requestBody": {"required": true, "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
                "responses": {
                    "200": {"description": "The stored batch with its counts and times (RFC 3339, China Standard Time), what was read, and `redelivered`: the ids of held quarantine entries this batch closed by delivering their records readable", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": error_response("An empty or non-UTF-8 batch, or one whose first line is not a JSON object (nothing is stored)"),
                    "401": error_response("No or a wrong intake key"),
                    "404": error_response("The source is not registered"),
                    "413": error_response("The batch is larger than the server accepts"),
                    "503": error_response("The endpoint is off (no intake key configured)"),
                }
            }},
            "/api/catalogue": {"get": {
                "summary": "The catalogue: every resource (base-library views and department datasets) with each field's sharing class and sensitivity, provider, update frequency, last update and the share of fields shared",
                "security": [{"token": []}],
                "responses": {
                    "200": {"description": "The resources", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": error_response("No valid token"),
                }
            }},
            "/api/catalogue/{id}": {"get": {
                "summary": "One resource of the catalogue; `?format=ckan` gives it in the shape of a CKAN dataset record",
                "security": [{"token": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "format", "in": "query", "required": false, "schema": {"type": "string", "enum": ["ckan"]}},
                ],
                "responses": {
                    "200": {"description": "The resource", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": error_response("No valid token"),
                    "404": error_response("No such resource"),
                }
            }},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "tb_<id>_<secret>, from `tongban identity token issue`"},
                "intake_key": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string", "description": "A stable code"},
                    "message": {"type": "string"}}},
                "Results": {"type": "object", "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/GovernedRecord"}},
                    "truncated": {"type": "boolean", "description": "A search had more than 20 results"},
                    "note": {"type": "string", "description": "Search: which searched fields the caller's grants in force never unmask, so that a search by them finds no one (said from the grants alone, whatever the search found)"},
                    "not_found": {"type": "array", "items": {"type": "string"}, "description": "Bulk lookup: keys unknown or outside the caller's jurisdiction"},
                }},
                "GovernedRecord": {"type": "object", "required": ["key", "fields", "withheld", "served_under"], "properties": {
                    "key": {"type": "string"},
                    "community": {"type": "string", "description": "The division code the subject lies in"},
                    "fields": {"type": "object", "additionalProperties": {"oneOf": [
                        {"type": "object", "description": "Shown, with provenance", "properties": {
                            "value": {"type": "string"}, "source": {"type": "string"}, "record_key": {"type": "string"},
                            "role": {"type": "string"}, "date": {"type": "string"}}},
                        {"type": "object", "description": "Masked", "properties": {"masked": {"type": "string"}}},
                    ]}},
                    "withheld": {"type": "array", "items": {"type": "string"}},
                    "served_under": {"type": "array", "items": {"type": "object", "properties": {
                        "grant": {"type": "string"}, "purpose": {"type": "string"}, "legal_basis": {"type": "string"}}}},
                    "quota_exhausted": {"type": "array", "items": {"type": "string"}},
                    "audit_entry": {"type": "integer", "description": "Read by key: the audit entry recording this read"},
                }},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_api_route_is_described() {
        let doc = super::document();
        let paths = doc["paths"].as_object().unwrap();
        let source = include_str!("lib.rs");
        let routes: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".route(\"")?.split('"').next())
            .collect();
        assert!(routes.len() >= 6, "{routes:?}");
        for r in routes {
            assert!(paths.contains_key(r), "{r} is not in the OpenAPI document");
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
