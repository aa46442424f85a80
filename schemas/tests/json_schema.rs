//! The checked-in JSON Schema files equal what the Rust types generate, and every golden example
//! message validates against them and decodes.

use backup_schemas::{json_schema, Envelope, TaskKind};
use std::path::Path;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("json")
}

#[test]
fn checked_in_schemas_match_the_types() {
    let mut drifted = Vec::new();
    for (name, expected) in json_schema::files() {
        let actual = std::fs::read_to_string(root().join(&name)).unwrap_or_default();
        if actual != expected {
            drifted.push(name);
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas/json is out of date for {drifted:?}: run `make schemas` and commit the result"
    );
    // No stale files either.
    let generated: std::collections::BTreeSet<String> = json_schema::files().into_iter().map(|(n, _)| n).collect();
    for dir in ["", "kinds", "golden"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("schemas/json exists") {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
                assert!(generated.contains(&name), "stale schema file {name}");
            }
        }
    }
}

fn load(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(name)).unwrap()).unwrap()
}

#[test]
fn golden_messages_validate_and_decode() {
    let envelope_schema = jsonschema::validator_for(&load("envelope.schema.json")).expect("envelope schema compiles");
    for kind in TaskKind::ALL {
        let name = format!("golden/{}.json", kind.as_str());
        let text = std::fs::read_to_string(root().join(&name)).unwrap();
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = envelope_schema.iter_errors(&message).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name} violates the envelope schema: {errors:?}");

        let params_schema = jsonschema::validator_for(&load(&format!("kinds/{}.schema.json", kind.as_str()))).unwrap();
        assert!(params_schema.is_valid(&message["params"]), "{name}: params violate the kind schema");

        let envelope = Envelope::decode(&text).unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        assert_eq!(envelope.kind(), *kind);
    }
}

#[test]
fn schema_rejects_what_the_decoder_rejects() {
    let envelope_schema = jsonschema::validator_for(&load("envelope.schema.json")).unwrap();
    let mut message = load("golden/fleet.canary.json");
    message["kind"] = serde_json::json!("ebs.format_disk");
    assert!(!envelope_schema.is_valid(&message), "unknown kind");
    let mut message = load("golden/ebs.snapshot_volume.json");
    message["params"]["volume_id"] = serde_json::json!(42);
    assert!(!envelope_schema.is_valid(&message), "wrong parameter type");
}
