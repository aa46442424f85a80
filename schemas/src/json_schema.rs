//! Generation of the checked-in JSON Schema files (`schemas/json/`): one for the envelope (with
//! every kind as a `oneOf` branch), one per kind's parameters, and a golden example message per
//! kind (`schemas/json/golden/`). A test fails when the files
//! drift from the Rust types; `cargo run -p backup-schemas --example gen-json-schema` rewrites them.

use crate::envelope::Envelope;
use crate::samples::sample_envelope;
use crate::task::{Task, TaskKind};

/// (relative file name, pretty JSON) for every schema file.
pub fn files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let envelope = schemars::schema_for!(Envelope);
    files.push(("envelope.schema.json".to_owned(), pretty(&envelope)));
    for (kind, schema) in Task::params_schemas() {
        files.push((format!("kinds/{}.schema.json", kind.as_str()), pretty(&schema)));
    }
    for kind in TaskKind::ALL {
        let mut text = serde_json::to_string_pretty(&sample_envelope(*kind)).expect("sample serialises");
        text.push('\n');
        files.push((format!("golden/{}.json", kind.as_str()), text));
    }
    files
}

fn pretty(schema: &schemars::Schema) -> String {
    // Sorted keys: the files must not depend on serde_json's map feature in a given build.
    let value = crate::ids::canonical_json(&serde_json::to_value(schema).expect("schema serialises"));
    let mut text = serde_json::to_string_pretty(&value).expect("schema serialises");
    text.push('\n');
    text
}
