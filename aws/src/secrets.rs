//! `SecretStore` on Secrets Manager: the current value of a database secret, read when a worker
//! connects and never kept, logged or recorded.

use async_trait::async_trait;
use backup_core::services::secrets::{SecretStore, SecretText};
use backup_core::AwsError;

use crate::classify::classify;
use crate::config::AwsContext;

#[derive(Clone, Debug)]
pub struct SecretsManager {
    aws: AwsContext,
}

impl SecretsManager {
    pub fn new(aws: AwsContext) -> Self {
        Self { aws }
    }
}

#[async_trait]
impl SecretStore for SecretsManager {
    async fn secret_string(&self, region: &str, secret_id: &str) -> Result<SecretText, AwsError> {
        let output = self
            .aws
            .clients_in(region)
            .secrets
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| classify("secretsmanager", "GetSecretValue", e))?;
        match output.secret_string {
            Some(text) => Ok(SecretText::new(text)),
            None => Err(AwsError {
                service: "secretsmanager",
                operation: "GetSecretValue",
                code: "NoSecretString".into(),
                message: format!("secret {secret_id} holds binary data, not the JSON text a database secret is"),
                class: backup_core::ErrorClass::Permanent,
            }),
        }
    }
}
