//! Secrets Manager: the `SecretStore` port and the database credentials read from it. A secret's
//! value never reaches a log, a task message, the catalog or a report: [`DatabaseSecret`] prints
//! redacted and is handed only to the client tools' environment.

use async_trait::async_trait;
use serde::Deserialize;
use std::fmt;

use crate::error::AwsError;

/// A secret's value (`SecretString`). `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The value, for the one place that hands it to a client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The current value (`AWSCURRENT`) of a secret, by ARN or name, in `region`.
    async fn secret_string(&self, region: &str, secret_id: &str) -> Result<SecretText, AwsError>;
}

/// A store that has no secrets: for workers and tests that run no logical backups. Every read
/// fails permanently, naming the secret.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSecrets;

#[async_trait]
impl SecretStore for NoSecrets {
    async fn secret_string(&self, _region: &str, secret_id: &str) -> Result<SecretText, AwsError> {
        Err(AwsError {
            service: "secretsmanager",
            operation: "GetSecretValue",
            code: "NoSecretStore".into(),
            message: format!("this worker has no secret store configured to read {secret_id}"),
            class: crate::error::ErrorClass::Permanent,
        })
    }
}

/// Database credentials in the JSON shape RDS uses for the secrets it manages (and the rotation
/// functions expect): `host`, `port`, `username`, `password`, `dbname` (`engine` and others ignored).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct DatabaseSecret {
    pub host: String,
    #[serde(default = "default_port", deserialize_with = "port_number_or_text")]
    pub port: u16,
    pub username: String,
    pub password: String,
    /// RDS-managed secrets of PostgreSQL name it `dbname`; `database` is accepted too.
    #[serde(default, alias = "database")]
    pub dbname: Option<String>,
}

impl fmt::Debug for DatabaseSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSecret")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("dbname", &self.dbname)
            .finish()
    }
}

fn default_port() -> u16 {
    5432
}

fn port_number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Port::deserialize(d)? {
        Port::Number(n) => Ok(n),
        Port::Text(t) => t.trim().parse().map_err(|_| serde::de::Error::custom(format!("port {t:?} is not a number"))),
    }
}

impl DatabaseSecret {
    /// Parses a secret's value. The error names what is missing, never the value.
    pub fn parse(secret_id: &str, text: &SecretText) -> Result<Self, String> {
        serde_json::from_str(text.expose()).map_err(|e| {
            // serde_json's message can quote the input around the error: keep only its category.
            let what = match e.classify() {
                serde_json::error::Category::Data => {
                    let message = e.to_string();
                    // "missing field `host` at line 1 column 50" -> "missing field `host`"
                    message.split(" at line").next().unwrap_or("unexpected data").to_owned()
                }
                _ => "not JSON".to_owned(),
            };
            format!(
                "secret {secret_id}: {what} (expected JSON with host, port, username, password and dbname, as RDS writes it)"
            )
        })
    }
}

/// The region of a Secrets Manager ARN (`arn:aws:secretsmanager:<region>:<account>:secret:<name>`).
pub fn secret_region(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some("secretsmanager"), Some(region), Some(_), Some(rest))
            if !region.is_empty() && rest.starts_with("secret:") =>
        {
            Some(region)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rds_shape_and_never_prints_the_password() {
        let text = SecretText::new(
            r#"{"engine":"postgres","host":"db.example","port":5432,"username":"backup","password":"hunter2","dbname":"orders"}"#
                .into(),
        );
        let secret = DatabaseSecret::parse("s", &text).unwrap();
        assert_eq!((secret.host.as_str(), secret.port, secret.dbname.as_deref()), ("db.example", 5432, Some("orders")));
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{text:?}").contains("hunter2"));
        let text = SecretText::new(r#"{"host":"h","port":"6432","username":"u","password":"p"}"#.into());
        assert_eq!(DatabaseSecret::parse("s", &text).unwrap().port, 6432);
    }

    #[test]
    fn a_bad_secret_is_named_without_its_value() {
        let text = SecretText::new(r#"{"host":"h","username":"u","passwd":"hunter2"}"#.into());
        let err = DatabaseSecret::parse("arn:x", &text).unwrap_err();
        assert!(err.contains("missing field `password`"), "{err}");
        assert!(!err.contains("hunter2"));
        let err = DatabaseSecret::parse("arn:x", &SecretText::new("hunter2".into())).unwrap_err();
        assert!(err.contains("not JSON") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn finds_the_region_of_a_secret_arn() {
        assert_eq!(
            secret_region("arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-AbCdEf"),
            Some("eu-west-1")
        );
        assert_eq!(secret_region("orders"), None);
        assert_eq!(secret_region("arn:aws:s3:::bucket"), None);
    }
}
