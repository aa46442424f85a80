//! Newtype identifiers used across the wire contract, so a task id can never be passed where a
//! run id or a lease owner is expected.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

string_id!(
    /// Deterministic task id: `t-` and 32 hex digits of SHA-256 over the task's kind and identity.
    /// It is the idempotency key everywhere (DynamoDB item, artifact tags, RDS identifiers).
    TaskId
);
string_id!(
    /// One expansion of a plan's schedule window, or one ingested event, or one operator action.
    RunId
);
string_id!(
    /// The worker process holding a lease: unique per process start.
    LeaseOwner
);

impl TaskId {
    /// Derives the id from the kind name and the canonical JSON of the task's identity (object
    /// keys sorted: serde_json's map order depends on whether any crate in the build enables its
    /// `preserve_order` feature, and an id must not depend on what it was compiled with).
    pub fn derive(kind: &str, identity: &serde_json::Value) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical_json(identity).to_string().as_bytes());
        let digest = hasher.finalize();
        Self(format!("t-{}", hex::encode(&digest[..16])))
    }

    /// A short form safe for resource names with tight limits (RDS snapshot identifiers: 255
    /// characters, letters, digits and hyphens, starting with a letter).
    pub fn short(&self) -> &str {
        self.0.get(2..18).unwrap_or(&self.0)
    }
}

impl RunId {
    /// Deterministic run id for a plan window, so expanding a window twice lands in the same run.
    pub fn for_window(plan: &str, window_start: chrono::DateTime<chrono::Utc>) -> Self {
        Self(format!("{plan}@{}", window_start.format("%Y-%m-%dT%H:%MZ")))
    }
}

/// `value` with every object's keys in sorted order, whatever map type serde_json was built with.
pub fn canonical_json(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut sorted = serde_json::Map::new();
            for key in keys {
                sorted.insert(key.clone(), canonical_json(&map[key]));
            }
            serde_json::Value::Object(sorted)
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(canonical_json).collect()),
        other => other.clone(),
    }
}
