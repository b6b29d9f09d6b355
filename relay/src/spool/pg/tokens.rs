//! Tokens shared by every relay on one database (`postwire_tokens`): what
//! `postwire token add|list|remove --spool URL` writes, and what every relay
//! started with `--spool` reads instead of `DATA_DIR/tokens.toml`
//! (`server::live_tokens`), so one `token add` serves every relay and one
//! `token remove` reaches all of them.
//!
//! - A row holds exactly what `tokens.toml` holds for a token: the
//!   [`TokenRecord`] (name, `sha256:` hash of the secret, allowed senders,
//!   limits) as JSON. The secret is returned once by [`PgTokens::add`] and
//!   stored nowhere.
//! - `postwire_token_version` (migration 2) is bumped by a trigger in the
//!   transaction of every change to the table, by this module or by hand in
//!   `psql`. A relay polls that one row ([`PgTokens::version`]) and reads the
//!   tokens again ([`PgTokens::load`]) only when it moved; `load` reads the
//!   version and the rows in one statement, hence from one snapshot, so a
//!   change committed meanwhile is never marked as seen.
//! - Rows are checked as the file is (hash shape, unique names, no unknown
//!   fields): a row that is not a valid record makes the whole set invalid,
//!   and a running relay keeps its previous set.

use std::path::Path;

use deadpool_postgres::Pool;

use super::SpoolUrl;
use crate::token::{self, TokenError, TokenRecord, TokenStore};

/// Errors of the shared token table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgTokenError {
    /// A bad name or sender, a name taken, an unknown name, a bad hash or two
    /// tokens of one name: as with the file.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The database could not be reached or a statement failed; retrying
    /// later may help.
    #[error("token database {origin}: {message}")]
    Database {
        /// The database, without its password.
        origin: String,
        /// What failed.
        message: String,
    },
    /// A row is not a token record (edited by hand?).
    #[error("{origin}: the row of token {name:?} is not a token record: {message}")]
    BadRecord {
        /// The database, without its password.
        origin: String,
        /// The row's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The shared token table of one database. Cloning shares the pool.
#[derive(Clone)]
pub struct PgTokens {
    pool: Pool,
    origin: String,
}

impl std::fmt::Debug for PgTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

/// The token set as one statement read it.
#[derive(Debug)]
pub struct Snapshot {
    /// The version of the set read.
    pub version: i64,
    /// The tokens, or why the rows do not make a valid set.
    pub tokens: Result<TokenStore, PgTokenError>,
}

impl PgTokens {
    /// The table behind `pool` (the spool's own pool, in a relay); the
    /// migrations must have been applied.
    pub fn new(pool: Pool, url: &SpoolUrl) -> Self {
        PgTokens {
            pool,
            origin: format!("{url}"),
        }
    }

    /// Connects to `url` with a small pool of its own (for `postwire
    /// token`) and applies the migrations.
    pub async fn connect(url: &SpoolUrl) -> Result<Self, PgTokenError> {
        let pool = url.pool(2).map_err(|e| PgTokenError::Database {
            origin: url.to_string(),
            message: e.to_string(),
        })?;
        let tokens = PgTokens::new(pool, url);
        let mut client = tokens.client().await?;
        super::schema::migrate(&mut client)
            .await
            .map_err(|e| tokens.db(e))?;
        Ok(tokens)
    }

    /// The database, without its password, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn db(&self, e: impl std::fmt::Display) -> PgTokenError {
        PgTokenError::Database {
            origin: self.origin.clone(),
            message: e.to_string(),
        }
    }

    /// A statement's error, with the server's message.
    fn pg(&self, e: tokio_postgres::Error) -> PgTokenError {
        self.db(super::describe(&e))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, PgTokenError> {
        self.pool
            .get()
            .await
            .map_err(|e| self.db(super::describe_pool(&e)))
    }

    fn record(&self, name: &str, value: serde_json::Value) -> Result<TokenRecord, PgTokenError> {
        let bad = |message: String| PgTokenError::BadRecord {
            origin: self.origin.clone(),
            name: name.to_string(),
            message,
        };
        let record: TokenRecord = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if record.name != name {
            return Err(bad(format!("it names itself {:?}", record.name)));
        }
        Ok(record)
    }

    /// Adds a token and returns its secret, which is stored nowhere. A
    /// token of that name already there is [`TokenError::Exists`].
    pub async fn add(
        &self,
        name: &str,
        allow_from: &[String],
        max_size: u64,
        rate_per_minute: u32,
    ) -> Result<String, PgTokenError> {
        let (secret, record) = token::new_token(name, allow_from, max_size, rate_per_minute)?;
        let value = serde_json::to_value(&record).map_err(|e| self.db(e))?;
        let added = self
            .client()
            .await?
            .execute(
                "INSERT INTO postwire_tokens (name, record, updated_ms)
                 VALUES ($1, $2, postwire_now_ms()) ON CONFLICT (name) DO NOTHING",
                &[&record.name, &value],
            )
            .await
            .map_err(|e| self.pg(e))?;
        if added == 0 {
            return Err(TokenError::Exists(name.to_string()).into());
        }
        Ok(secret)
    }

    /// The tokens, oldest first, checked as a relay checks them.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, PgTokenError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, record FROM postwire_tokens ORDER BY updated_ms, name",
                &[],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let records = rows
            .iter()
            .map(|r| self.record(r.get(0), r.get(1)))
            .collect::<Result<Vec<_>, _>>()?;
        // The same checks as a relay's load (hash shape, unique names).
        TokenStore::from_records(Path::new(&self.origin), records.clone())?;
        Ok(records)
    }

    /// Removes the token `name` and returns its record; an unknown name is
    /// [`TokenError::Unknown`].
    pub async fn remove(&self, name: &str) -> Result<TokenRecord, PgTokenError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM postwire_tokens WHERE name = $1 RETURNING record",
                &[&name],
            )
            .await
            .map_err(|e| self.pg(e))?;
        match row {
            Some(r) => self.record(name, r.get(0)),
            None => Err(TokenError::Unknown(name.to_string()).into()),
        }
    }

    /// The version of the token set: it changes with every change.
    pub async fn version(&self) -> Result<i64, PgTokenError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT version FROM postwire_token_version", &[])
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.get(0))
    }

    /// The version and the tokens, from one snapshot. `Err`: the database
    /// did not answer; `Ok` with invalid [`Snapshot::tokens`]: it answered
    /// with rows that are not a valid set (that version need not be read
    /// again).
    pub async fn load(&self) -> Result<Snapshot, PgTokenError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT v.version, t.name, t.record
                 FROM postwire_token_version v LEFT JOIN postwire_tokens t ON true
                 ORDER BY t.updated_ms, t.name",
                &[],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let Some(version) = rows.first().map(|r| r.get::<_, i64>(0)) else {
            return Err(self.db("postwire_token_version has no row"));
        };
        let tokens = rows
            .iter()
            .filter_map(|r| {
                let name: Option<String> = r.get(1);
                name.map(|n| self.record(&n, r.get(2)))
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|records| {
                TokenStore::from_records(Path::new(&self.origin), records).map_err(Into::into)
            });
        Ok(Snapshot { version, tokens })
    }
}
