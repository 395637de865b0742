//! `Idempotency-Key` across the cluster: one Redis key per idempotency key,
//! `<prefix>-idempotency#<key>`, claimed with `SET NX PX <window>` (so exactly one node
//! emits) and then holding the answer for the window.

use std::time::Duration;

use bytes::Bytes;

use super::RedisCluster;
use crate::adapter::AdapterError;
use crate::adapter::idempotency::Claim;

/// What a claimed key holds until its emit answers.
const PENDING: &[u8] = b"p";
/// What precedes the answer in a key that holds one.
const DONE: u8 = b'd';

impl RedisCluster {
    fn idempotency_key(&self, key: &str) -> String {
        format!("{}-idempotency#{key}", self.inner.conns.channels.prefix())
    }

    fn connection(&self) -> Result<redis::aio::MultiplexedConnection, AdapterError> {
        self.inner.check_up()?;
        self.inner
            .conns
            .publisher()
            .ok_or_else(|| AdapterError::ClusterUnavailable("not connected to Redis".into()))
    }

    /// Claims `key` cluster-wide for `window`.
    pub async fn claim_idempotency(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<Claim, AdapterError> {
        let mut conn = self.connection()?;
        let unavailable =
            |err: redis::RedisError| AdapterError::ClusterUnavailable(err.to_string());
        let redis_key = self.idempotency_key(key);
        // SET NX, and what the key holds when it was there already, in one round trip.
        let (set, existing): (Option<String>, Option<Vec<u8>>) = redis::pipe()
            .cmd("SET")
            .arg(&redis_key)
            .arg(PENDING)
            .arg("NX")
            .arg("PX")
            .arg(window.as_millis() as u64)
            .cmd("GET")
            .arg(&redis_key)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if set.is_some() {
            return Ok(Claim::First);
        }
        Ok(match existing {
            Some(value) if value.first() == Some(&DONE) => {
                Claim::Repeat(Bytes::copy_from_slice(&value[1..]))
            }
            // Pending, or gone between the two commands (expired): not ours either way.
            _ => Claim::Pending,
        })
    }

    /// Stores the answer of a claimed `key` for `window`; `None` releases the key.
    pub async fn finish_idempotency(&self, key: &str, answer: Option<Bytes>, window: Duration) {
        let Ok(mut conn) = self.connection() else {
            // The claim expires by itself.
            return;
        };
        let redis_key = self.idempotency_key(key);
        let cmd = match answer {
            Some(answer) => {
                let mut value = Vec::with_capacity(answer.len() + 1);
                value.push(DONE);
                value.extend_from_slice(&answer);
                let mut cmd = redis::cmd("SET");
                cmd.arg(&redis_key)
                    .arg(value)
                    .arg("PX")
                    .arg(window.as_millis() as u64);
                cmd
            }
            None => {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(&redis_key);
                cmd
            }
        };
        if let Err(error) = cmd.query_async::<()>(&mut conn).await {
            tracing::warn!(%error, "cluster: idempotency key not updated");
        }
    }
}
