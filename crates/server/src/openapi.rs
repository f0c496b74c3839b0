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

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Tongban 通办", "version": env!("CARGO_PKG_VERSION"),
            "description": "Governed reads of the base libraries (人口库 · 法人库 · 房屋库), citizens' access log, and the intake push endpoint."},
        "servers": [{"url": "/"}],
        "paths": {
            "/api/persons/{key}": governed_read("person", "P"),
            "/api/entities/{key}": governed_read("legal entity", "E"),
            "/api/rooms/{key}": governed_read("room", "R"),
            "/api/buildings/{key}": governed_read("building", "B"),
            "/api/me/accesses": {"get": {
                "summary": "Who read the calling citizen's record: when, user, department, role, fields, grant and purpose",
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
                    "200": {"description": "The stored batch with its counts", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": error_response("An empty, non-UTF-8 or unreadable batch"),
                    "401": error_response("No or a wrong intake key"),
                    "404": error_response("The source is not registered"),
                    "413": error_response("The batch is larger than the server accepts"),
                    "503": error_response("The endpoint is off (no intake key configured)"),
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
                "GovernedRecord": {"type": "object", "required": ["key", "fields", "withheld", "served_under", "audit_entry"], "properties": {
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
                    "audit_entry": {"type": "integer", "description": "The audit entry recording this read"},
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
