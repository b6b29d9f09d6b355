//! The PostgreSQL spool's tables, as numbered migrations that every relay
//! applies at start.
//!
//! Several relays may start at once: each takes the transaction-level
//! advisory lock [`LOCK_KEY`] first, reads the versions already in
//! `postwire_migrations`, and applies the missing ones in that same
//! transaction, so the first relay migrates and the others find nothing to
//! do. A migration is never edited once released; a change is a new one.
//! A database migrated by a newer relay (a version we do not know) is
//! refused rather than used.
//!
//! Times are milliseconds since the Unix epoch, read from the database's
//! clock (`postwire_now_ms()`), so that relays with different clocks agree
//! on which leases have expired and which attempts are due.

/// The advisory lock all migrations run under ("pwspool1").
pub const LOCK_KEY: i64 = 0x7077_7370_6f6f_6c31;

/// `(version, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE FUNCTION postwire_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

-- One row per accepted message; (token, client_id) is the idempotency key.
CREATE TABLE postwire_messages (
  id          bigserial PRIMARY KEY,
  token       text    NOT NULL,
  client_id   text    NOT NULL,
  envelope    jsonb   NOT NULL,
  mail_from   text    NOT NULL,
  received_ms bigint  NOT NULL,
  size        bigint  NOT NULL,
  attempts    integer NOT NULL DEFAULT 0,
  held        boolean NOT NULL DEFAULT false,
  deleted     boolean NOT NULL DEFAULT false,
  -- when every recipient became final (NULL while one is not)
  final_ms    bigint,
  UNIQUE (token, client_id)
);
CREATE INDEX postwire_messages_final ON postwire_messages (final_ms) WHERE final_ms IS NOT NULL;

-- The bytes, in chunks (a 50 MB message is not one value); deleted once
-- every recipient is final.
CREATE TABLE postwire_message_chunks (
  message_id bigint  NOT NULL REFERENCES postwire_messages (id) ON DELETE CASCADE,
  seq        integer NOT NULL,
  data       bytea   NOT NULL,
  PRIMARY KEY (message_id, seq)
);

-- One row per recipient, with its lease while an attempt runs.
CREATE TABLE postwire_deliveries (
  message_id       bigint  NOT NULL REFERENCES postwire_messages (id) ON DELETE CASCADE,
  idx              integer NOT NULL,
  rcpt             text    NOT NULL,
  state            jsonb   NOT NULL,
  final            boolean NOT NULL DEFAULT false,
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_ms  bigint,
  lease_owner      text,
  lease_expires_ms bigint,
  lease_token      bigint,
  PRIMARY KEY (message_id, idx)
);
CREATE INDEX postwire_deliveries_due ON postwire_deliveries (next_attempt_ms) WHERE NOT final;

CREATE SEQUENCE postwire_lease_tokens;

-- Every event, durably, with a sequence relays follow.
CREATE TABLE postwire_events (
  seq        bigserial PRIMARY KEY,
  message_id bigint  NOT NULL,
  token      text    NOT NULL,
  client_id  text    NOT NULL,
  rcpt       text    NOT NULL,
  kind       jsonb   NOT NULL,
  last       boolean NOT NULL,
  at_ms      bigint  NOT NULL,
  relay      text    NOT NULL
);
CREATE INDEX postwire_events_message ON postwire_events (message_id, seq);

-- Tokens shared by every relay on this database.
CREATE TABLE postwire_tokens (
  name       text PRIMARY KEY,
  record     jsonb  NOT NULL,
  updated_ms bigint NOT NULL
);

-- Submissions per token and minute, for rate limits across relays.
CREATE TABLE postwire_rate (
  token     text    NOT NULL,
  minute    bigint  NOT NULL,
  count     integer NOT NULL,
  PRIMARY KEY (token, minute)
);
"#,
    ),
    (
        2,
        r#"
-- The version of the token set: bumped in the transaction of every change
-- to postwire_tokens (by `postwire token` or by hand), so that relays poll
-- one row and read the tokens again only when it moved.
CREATE TABLE postwire_token_version (
  one     boolean PRIMARY KEY DEFAULT true CHECK (one),
  version bigint  NOT NULL
);
INSERT INTO postwire_token_version (version) VALUES (0);
CREATE FUNCTION postwire_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN UPDATE postwire_token_version SET version = version + 1; RETURN NULL; END $$;
CREATE TRIGGER postwire_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
  ON postwire_tokens FOR EACH STATEMENT EXECUTE FUNCTION postwire_tokens_changed();

-- Rate counters need no WAL: a crash that forgets the current minute's
-- counts only resets a rate limit, and no submission waits for a WAL
-- flush to be counted.
ALTER TABLE postwire_rate SET UNLOGGED;
"#,
    ),
    (
        3,
        r#"
-- Message bytes are stored as they are, not compressed: a spooled message
-- lives for seconds, and pglz compressing every chunk cost more CPU than
-- any other single function of the server under load (bench/relay).
ALTER TABLE postwire_message_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
"#,
    ),
    (
        4,
        r#"
-- Webhook endpoints shared by every relay on this database (`postwire
-- webhook add --spool URL`); the secret is the HMAC key itself, so it is
-- kept, not hashed.
CREATE TABLE postwire_webhook_endpoints (
  name          text    PRIMARY KEY,
  url           text    NOT NULL,
  token         text,   -- NULL: every token
  allow_http    boolean NOT NULL DEFAULT false,
  allow_private boolean NOT NULL DEFAULT false,
  secret        text    NOT NULL,
  created_ms    bigint  NOT NULL
);

-- The webhook outbox: one row per event and endpoint that hears of it,
-- written by the trigger below in the transaction that writes the event,
-- so no event is committed without its webhook rows. Any relay claims due
-- rows (lease_owner, lease_until_ms) and deletes a row once delivered.
CREATE TABLE postwire_webhook_outbox (
  id             bigserial PRIMARY KEY,
  event_seq      bigint  NOT NULL,
  endpoint       text    NOT NULL REFERENCES postwire_webhook_endpoints (name) ON DELETE CASCADE,
  message_id     bigint  NOT NULL,
  token          text    NOT NULL,
  client_id      text    NOT NULL,
  rcpt           text    NOT NULL,
  kind           jsonb   NOT NULL,
  last           boolean NOT NULL,
  at_ms          bigint  NOT NULL,
  -- the message's envelope, for `accepted`
  envelope       jsonb,
  created_ms     bigint  NOT NULL,
  attempts       integer NOT NULL DEFAULT 0,
  next_ms        bigint  NOT NULL,
  lease_owner    text,
  lease_until_ms bigint,
  UNIQUE (event_seq, endpoint)
);
CREATE INDEX postwire_webhook_outbox_due ON postwire_webhook_outbox (next_ms);

CREATE FUNCTION postwire_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO postwire_webhook_outbox (event_seq, endpoint, message_id, token, client_id,
      rcpt, kind, last, at_ms, envelope, created_ms, next_ms)
  SELECT n.seq, w.name, n.message_id, n.token, n.client_id, n.rcpt, n.kind, n.last, n.at_ms,
         CASE WHEN n.kind->>'kind' = 'accepted' THEN
           (SELECT m.envelope FROM postwire_messages m WHERE m.id = n.message_id) END,
         postwire_now_ms(), postwire_now_ms()
  FROM new_events n JOIN postwire_webhook_endpoints w ON w.token IS NULL OR w.token = n.token
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    PERFORM pg_notify('postwire_webhooks', '');
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER postwire_webhook_events AFTER INSERT ON postwire_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION postwire_webhook_events();

-- The trigger above is enabled only while an endpoint exists: with no
-- endpoint at all it cost the server CPU on every message (bench/relay). Switched in the transaction that
-- adds the first endpoint or removes the last, by `postwire webhook` or by
-- hand; as the tables' owner, so that a role that may only write the
-- endpoints can still add one.
CREATE FUNCTION postwire_webhook_endpoints_changed() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM postwire_webhook_endpoints) THEN
    ALTER TABLE postwire_events ENABLE TRIGGER postwire_webhook_events;
  ELSE
    ALTER TABLE postwire_events DISABLE TRIGGER postwire_webhook_events;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER postwire_webhook_endpoints_changed AFTER INSERT OR DELETE OR TRUNCATE
  ON postwire_webhook_endpoints FOR EACH STATEMENT EXECUTE FUNCTION postwire_webhook_endpoints_changed();
ALTER TABLE postwire_events DISABLE TRIGGER postwire_webhook_events;
"#,
    ),
];

/// Applies the missing migrations; the versions now present, newest last.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<i32, MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS postwire_migrations (
           version integer PRIMARY KEY,
           applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let have: Vec<i32> = tx
        .query(
            "SELECT version FROM postwire_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(&v) = have.iter().find(|&&v| v > newest_known) {
        return Err(MigrateError::Newer(v, newest_known));
    }
    for (version, sql) in MIGRATIONS {
        if have.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO postwire_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "spool database migrated");
    }
    tx.commit().await?;
    Ok(newest_known)
}

/// Errors of [`migrate`].
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A statement failed.
    #[error("cannot migrate the spool database: {}", super::describe(.0))]
    Db(#[from] tokio_postgres::Error),
    /// The database was migrated by a newer relay.
    #[error(
        "the spool database has schema version {0}, newer than this relay knows ({1}): upgrade the relay"
    )]
    Newer(i32, i32),
}
