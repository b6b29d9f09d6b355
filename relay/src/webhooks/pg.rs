//! Webhooks in the PostgreSQL spool's database, shared by every relay on it
//! (migration 4 in `spool::pg::schema`):
//!
//! - `postwire_webhook_endpoints`: what `postwire webhook add|list|remove
//!   --spool URL` manages, one row per [`Endpoint`] with its signing secret
//!   (the HMAC key itself, so kept, not hashed; returned once by
//!   [`PgWebhooks::add`], never listed).
//! - `postwire_webhook_outbox`: one row per event and endpoint that hears of
//!   it, written by a trigger on `postwire_events` in the very transaction
//!   that writes the event, so there is no window between the spool's
//!   commit and the outbox. Any relay [`claims`](PgWebhooks::claim) due rows
//!   (`FOR UPDATE SKIP LOCKED`, leased until a time of the database's
//!   clock); a relay that dies holding some leaves them to whichever relay
//!   claims them once the lease passed. A row is deleted once delivered or
//!   given up, and only by the relay whose lease it still is.
//!
//! The dispatcher that uses this is [`super::shared`].

use deadpool_postgres::Pool;

use super::store::{self, Endpoint, StoreError};
use crate::spool::pg::SpoolUrl;

/// Errors of the shared webhook tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgWebhookError {
    /// A bad name or URL, a name taken, an unknown name: as with the file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database could not be reached or a statement failed; retrying
    /// later may help.
    #[error("webhook database {origin}: {message}")]
    Database {
        /// The database, without its password.
        origin: String,
        /// What failed.
        message: String,
    },
}

/// The shared webhook tables of one database. Cloning shares the pool.
#[derive(Clone)]
pub struct PgWebhooks {
    pool: Pool,
    origin: String,
}

impl std::fmt::Debug for PgWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

/// One claimed outbox row: an event for one endpoint.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The row.
    pub id: i64,
    /// The endpoint, as it is now.
    pub endpoint: Endpoint,
    /// Its signing secret.
    pub secret: String,
    /// The event's message.
    pub key: crate::spool::Key,
    /// The event's recipient (empty for `accepted`).
    pub rcpt: String,
    /// The stored kind (`spool::pg::kinds`).
    pub kind: serde_json::Value,
    /// The recipient's last event.
    pub last: bool,
    /// When the spool recorded the event, ms since the epoch.
    pub at_ms: u64,
    /// The message's envelope (for `accepted`).
    pub envelope: Option<serde_json::Value>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// How long ago the event was queued, by the database's clock.
    pub age_ms: u64,
    /// The lease's end: with the relay's name, the fence of
    /// [`PgWebhooks::done_all`], [`PgWebhooks::hand_back`] and
    /// [`PgWebhooks::retry`].
    pub lease_until_ms: i64,
    /// The relay whose lease on the row passed without it being done or
    /// put back (it died, or its attempt outlived the lease).
    pub taken_from: Option<String>,
}

const CLAIM: &str = "
WITH c AS (
  SELECT id, lease_owner FROM postwire_webhook_outbox
   WHERE next_ms <= postwire_now_ms()
   ORDER BY next_ms
   LIMIT $2
   FOR UPDATE SKIP LOCKED)
UPDATE postwire_webhook_outbox o
   SET lease_owner = $1, lease_until_ms = postwire_now_ms() + $3,
       next_ms = postwire_now_ms() + $3
  FROM c, postwire_webhook_endpoints w
 WHERE o.id = c.id AND w.name = o.endpoint
RETURNING o.id, w.name, w.url, w.token, w.allow_http, w.allow_private, w.secret,
          o.token, o.client_id, o.rcpt, o.kind, o.last, o.at_ms, o.envelope, o.attempts,
          postwire_now_ms() - o.created_ms, o.lease_until_ms, c.lease_owner";

fn clamp_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PgWebhooks {
    /// The tables behind `pool` (the spool's own pool, in a relay); the
    /// migrations must have been applied.
    pub fn new(pool: Pool, url: &SpoolUrl) -> Self {
        PgWebhooks {
            pool,
            origin: format!("{url}"),
        }
    }

    /// Connects to `url` with a small pool of its own (for `postwire
    /// webhook`) and applies the migrations.
    pub async fn connect(url: &SpoolUrl) -> Result<Self, PgWebhookError> {
        let pool = url.pool(2).map_err(|e| PgWebhookError::Database {
            origin: url.to_string(),
            message: e.to_string(),
        })?;
        let hooks = PgWebhooks::new(pool, url);
        let mut client = hooks.client().await?;
        crate::spool::pg::schema::migrate(&mut client)
            .await
            .map_err(|e| hooks.db(e))?;
        Ok(hooks)
    }

    /// The database, without its password, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn db(&self, e: impl std::fmt::Display) -> PgWebhookError {
        PgWebhookError::Database {
            origin: self.origin.clone(),
            message: e.to_string(),
        }
    }

    fn pg(&self, e: tokio_postgres::Error) -> PgWebhookError {
        self.db(crate::spool::pg::describe(&e))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, PgWebhookError> {
        self.pool
            .get()
            .await
            .map_err(|e| self.db(crate::spool::pg::describe_pool(&e)))
    }

    /// Registers `endpoint`; its new secret, to be shown once.
    pub async fn add(&self, endpoint: Endpoint) -> Result<String, PgWebhookError> {
        store::check(&endpoint)?;
        let secret = store::new_secret()?;
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO postwire_webhook_endpoints
                   (name, url, token, allow_http, allow_private, secret, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, postwire_now_ms())
                 ON CONFLICT (name) DO NOTHING",
                &[
                    &endpoint.name,
                    &endpoint.url,
                    &endpoint.token,
                    &endpoint.allow_http,
                    &endpoint.allow_private,
                    &secret,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        if n == 0 {
            return Err(StoreError::Exists(endpoint.name).into());
        }
        Ok(secret)
    }

    /// Every endpoint, by name (never their secrets).
    pub async fn list(&self) -> Result<Vec<Endpoint>, PgWebhookError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, url, token, allow_http, allow_private
                   FROM postwire_webhook_endpoints ORDER BY name",
                &[],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| Endpoint {
                name: r.get(0),
                url: r.get(1),
                token: r.get(2),
                allow_http: r.get(3),
                allow_private: r.get(4),
            })
            .collect())
    }

    /// Endpoint `name` and its secret.
    pub async fn get(&self, name: &str) -> Result<(Endpoint, String), PgWebhookError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT name, url, token, allow_http, allow_private, secret
                   FROM postwire_webhook_endpoints WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(|e| self.pg(e))?
            .ok_or_else(|| StoreError::Unknown(name.to_string()))?;
        Ok((
            Endpoint {
                name: row.get(0),
                url: row.get(1),
                token: row.get(2),
                allow_http: row.get(3),
                allow_private: row.get(4),
            },
            row.get(5),
        ))
    }

    /// Removes endpoint `name`, its secret and its undelivered events.
    pub async fn remove(&self, name: &str) -> Result<(), PgWebhookError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM postwire_webhook_endpoints WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(|e| self.pg(e))?;
        if n == 0 {
            return Err(StoreError::Unknown(name.to_string()).into());
        }
        Ok(())
    }

    /// Claims up to `limit` due rows for relay `owner`, leased for
    /// `lease_ms`.
    pub async fn claim(
        &self,
        owner: &str,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<Claimed>, PgWebhookError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(CLAIM).await.map_err(|e| self.pg(e))?;
        let rows = client
            .query(&stmt, &[&owner, &limit, &lease_ms])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| Claimed {
                id: r.get(0),
                endpoint: Endpoint {
                    name: r.get(1),
                    url: r.get(2),
                    token: r.get(3),
                    allow_http: r.get(4),
                    allow_private: r.get(5),
                },
                secret: r.get(6),
                key: crate::spool::Key {
                    token: r.get(7),
                    id: r.get(8),
                },
                rcpt: r.get(9),
                kind: r.get(10),
                last: r.get(11),
                at_ms: clamp_u64(r.get(12)),
                envelope: r.get(13),
                attempts: u32::try_from(r.get::<_, i32>(14)).unwrap_or(0),
                age_ms: clamp_u64(r.get(15)),
                lease_until_ms: r.get(16),
                taken_from: r.get(17),
            })
            .collect())
    }

    /// Forgets claimed rows `(id, lease_until_ms)` (delivered or given up)
    /// in one statement; how many were still this relay's (the others
    /// passed to another relay, which sends them again).
    pub async fn done_all(&self, owner: &str, rows: &[(i64, i64)]) -> Result<u64, PgWebhookError> {
        self.on_held(
            "DELETE FROM postwire_webhook_outbox o
              USING unnest($2::bigint[], $3::bigint[]) AS d(id, until)
              WHERE o.id = d.id AND o.lease_until_ms = d.until AND o.lease_owner = $1",
            owner,
            rows,
        )
        .await
    }

    /// Hands claimed rows `(id, lease_until_ms)` back unsent, due now, in
    /// one statement; how many were still this relay's.
    pub async fn hand_back(&self, owner: &str, rows: &[(i64, i64)]) -> Result<u64, PgWebhookError> {
        self.on_held(
            "UPDATE postwire_webhook_outbox o
                SET lease_owner = NULL, lease_until_ms = NULL, next_ms = postwire_now_ms()
               FROM unnest($2::bigint[], $3::bigint[]) AS d(id, until)
              WHERE o.id = d.id AND o.lease_until_ms = d.until AND o.lease_owner = $1",
            owner,
            rows,
        )
        .await
    }

    /// Runs `sql` (`$1` the owner, `$2` and `$3` the ids and lease ends)
    /// on the rows `owner` holds; how many it touched.
    async fn on_held(
        &self,
        sql: &str,
        owner: &str,
        rows: &[(i64, i64)],
    ) -> Result<u64, PgWebhookError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let (ids, untils): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(|e| self.pg(e))?;
        client
            .execute(&stmt, &[&owner, &ids, &untils])
            .await
            .map_err(|e| self.pg(e))
    }

    /// Puts a claimed row back, due in `delay_ms`, with `attempts` made.
    pub async fn retry(
        &self,
        owner: &str,
        row: &Claimed,
        attempts: u32,
        delay_ms: i64,
    ) -> Result<bool, PgWebhookError> {
        let client = self.client().await?;
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        let n = client
            .execute(
                "UPDATE postwire_webhook_outbox
                    SET attempts = $4, next_ms = postwire_now_ms() + $5,
                        lease_owner = NULL, lease_until_ms = NULL
                  WHERE id = $1 AND lease_owner = $2 AND lease_until_ms = $3",
                &[&row.id, &owner, &row.lease_until_ms, &attempts, &delay_ms],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(n == 1)
    }

    /// Makes the rows `owner` still holds due now (at a graceful stop).
    pub async fn release(&self, owner: &str) -> Result<u64, PgWebhookError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE postwire_webhook_outbox
                    SET lease_owner = NULL, lease_until_ms = NULL, next_ms = postwire_now_ms()
                  WHERE lease_owner = $1",
                &[&owner],
            )
            .await
            .map_err(|e| self.pg(e))
    }

    /// Rows waiting per endpoint (every endpoint, 0 included).
    pub async fn depth(&self) -> Result<Vec<(String, u64)>, PgWebhookError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT w.name, count(o.id) FROM postwire_webhook_endpoints w
                   LEFT JOIN postwire_webhook_outbox o ON o.endpoint = w.name
                  GROUP BY w.name",
                &[],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), clamp_u64(r.get(1))))
            .collect())
    }
}
