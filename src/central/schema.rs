//! The centre's PostgreSQL schema, one migration per transaction, under an
//! advisory lock so several centres starting at once migrate once.

use tokio_postgres::Client;

const MIGRATIONS: &[&str] = &[
    // 1: epochs, the journal, usages with their resolutions and refunds,
    // and conflicts; history-like tables are append-only.
    r#"
    CREATE TABLE site_epochs (
        site_id text NOT NULL, epoch integer NOT NULL CHECK (epoch >= 1),
        high_water bigint NOT NULL DEFAULT 0 CHECK (high_water >= 0),
        opened_at timestamptz NOT NULL DEFAULT now(), closed_at timestamptz,
        PRIMARY KEY (site_id, epoch));
    CREATE TABLE journal (
        site_id text NOT NULL, epoch integer NOT NULL, seq bigint NOT NULL CHECK (seq >= 1),
        kind text NOT NULL, body jsonb NOT NULL, site_at bigint NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (site_id, epoch, seq),
        FOREIGN KEY (site_id, epoch) REFERENCES site_epochs);
    CREATE TABLE usages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        site_id text NOT NULL, key text NOT NULL, fingerprint text NOT NULL,
        epoch integer NOT NULL, seq bigint NOT NULL,
        member_id text, origin text NOT NULL, credit_kind text NOT NULL,
        resource_type text,
        amount bigint NOT NULL CHECK (amount >= 0), is_hold boolean NOT NULL,
        covered bigint NOT NULL, overage bigint NOT NULL, at bigint NOT NULL,
        UNIQUE (site_id, key),
        FOREIGN KEY (site_id, epoch, seq) REFERENCES journal);
    CREATE TABLE hold_resolutions (
        site_id text NOT NULL, key text NOT NULL,
        outcome text NOT NULL CHECK (outcome IN ('settled', 'voided')),
        actual bigint NOT NULL CHECK (actual >= 0), at bigint NOT NULL,
        epoch integer NOT NULL, seq bigint NOT NULL,
        PRIMARY KEY (site_id, key),
        FOREIGN KEY (site_id, key) REFERENCES usages (site_id, key),
        FOREIGN KEY (site_id, epoch, seq) REFERENCES journal);
    CREATE TABLE refunds (
        site_id text NOT NULL, key text NOT NULL, reason text NOT NULL, at bigint NOT NULL,
        epoch integer NOT NULL, seq bigint NOT NULL,
        PRIMARY KEY (site_id, key),
        FOREIGN KEY (site_id, key) REFERENCES usages (site_id, key),
        FOREIGN KEY (site_id, epoch, seq) REFERENCES journal);
    CREATE TABLE ingest_conflicts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        site_id text NOT NULL, epoch integer NOT NULL, seq bigint NOT NULL,
        key text NOT NULL, what text NOT NULL, at timestamptz NOT NULL DEFAULT now());
    -- A usage at its final amount: a settled hold at what was settled, a
    -- voided hold at 0; refunds are listed beside it.
    CREATE VIEW usage_final AS
        SELECT u.site_id, u.key, u.member_id, u.credit_kind,
               CASE WHEN h.outcome = 'settled' THEN h.actual
                    WHEN h.outcome = 'voided' THEN 0 ELSE u.amount END AS amount,
               u.is_hold AND h.key IS NULL AS open_hold, r.key IS NOT NULL AS refunded
        FROM usages u
        LEFT JOIN hold_resolutions h USING (site_id, key)
        LEFT JOIN refunds r USING (site_id, key);
    CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
    CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    CREATE TRIGGER usages_append_only BEFORE UPDATE OR DELETE ON usages
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    CREATE TRIGGER holds_append_only BEFORE UPDATE OR DELETE ON hold_resolutions
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    CREATE TRIGGER refunds_append_only BEFORE UPDATE OR DELETE ON refunds
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    CREATE TRIGGER conflicts_append_only BEFORE UPDATE OR DELETE ON ingest_conflicts
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    "#,
    // 2: the chain's lots, issued once from the grants file (issue 18):
    // members, the catalog the reconcile diffs against, which resource
    // types each time credit pays for, lots with their history, and the
    // overage no lot covered. Each usage draws from its member's lots when
    // the centre applies it; a settle, void or refund changes that draw.
    // Invariant (checked by `lots_against_history`): a lot's remaining is
    // the sum of its history, from 0 to what was granted.
    r#"
    CREATE TABLE members (
        id text PRIMARY KEY, name text NOT NULL, closed_at bigint);
    CREATE TABLE catalog (
        kind text NOT NULL, id text NOT NULL, body text NOT NULL,
        first_seen bigint NOT NULL, PRIMARY KEY (kind, id));
    CREATE TABLE time_credit_types (
        credit_id text NOT NULL, resource_type text NOT NULL,
        PRIMARY KEY (credit_id, resource_type));
    CREATE TABLE lots (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        member_id text NOT NULL REFERENCES members, credit text NOT NULL,
        granted bigint NOT NULL CHECK (granted >= 0),
        remaining bigint NOT NULL CHECK (remaining >= 0 AND remaining <= granted),
        valid_from bigint NOT NULL, expires_at bigint,
        source text NOT NULL CHECK (source IN ('plan', 'product', 'account', 'adjustment')),
        source_key text NOT NULL UNIQUE, voided_at bigint, issued_at bigint NOT NULL);
    CREATE INDEX lots_by_member ON lots (member_id, credit);
    CREATE TABLE lot_history (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        lot_id bigint NOT NULL REFERENCES lots,
        kind text NOT NULL CHECK (kind IN
            ('grant', 'debit', 'hold', 'settle', 'void', 'expire', 'adjust', 'refund')),
        delta bigint NOT NULL, granted_delta bigint NOT NULL DEFAULT 0,
        usage_id bigint REFERENCES usages,
        note text NOT NULL DEFAULT '', at bigint NOT NULL);
    CREATE INDEX lot_history_by_lot ON lot_history (lot_id);
    CREATE INDEX lot_history_by_usage ON lot_history (usage_id) WHERE usage_id IS NOT NULL;
    CREATE TABLE central_overage (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        usage_id bigint NOT NULL REFERENCES usages, member_id text NOT NULL,
        unit text NOT NULL CHECK (unit IN ('cents', 'minutes')),
        kind text NOT NULL CHECK (kind IN ('debit', 'hold', 'settle', 'void', 'refund')),
        amount bigint NOT NULL, cause text NOT NULL, at bigint NOT NULL);
    CREATE INDEX central_overage_by_usage ON central_overage (usage_id);
    CREATE INDEX central_overage_by_member ON central_overage (member_id);
    CREATE TRIGGER lot_history_append_only BEFORE UPDATE OR DELETE ON lot_history
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    CREATE TRIGGER central_overage_append_only BEFORE UPDATE OR DELETE ON central_overage
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    "#,
    // 3: what each site last said of its outbox (`POST /v1/status`) and
    // when the centre heard it: one row per site, replaced each time; the
    // centre's `/metrics` reads it.
    r#"
    CREATE TABLE site_status (
        site_id text PRIMARY KEY, epoch integer NOT NULL,
        last_seq bigint NOT NULL, acked_seq bigint NOT NULL,
        oldest_at bigint, site_time bigint NOT NULL,
        heard_at timestamptz NOT NULL DEFAULT now());
    "#,
    // 4: escrow (multi-site.md 3.4-3.6). A slice is part of a lot placed
    // with one site, which spends it offline as a local lot; `escrowed` is
    // what a lot's open slices still hold, never more than its remaining,
    // so a slice never promises credit that does not exist. A usage's take
    // from a slice is a history row naming the slice; every change to a
    // slice is an `escrow_moves` row (append-only). Invariants: a lot's
    // escrowed is the sum of its open slices' amount - consumed - returned;
    // a slice's consumed is what history rows naming it took.
    r#"
    ALTER TABLE lots ADD COLUMN escrowed bigint NOT NULL DEFAULT 0;
    ALTER TABLE lots ADD CONSTRAINT lots_escrow_within CHECK (escrowed >= 0 AND escrowed <= remaining);
    CREATE TABLE escrow_slices (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        lot_id bigint NOT NULL REFERENCES lots, member_id text NOT NULL,
        site_id text NOT NULL, request_id text NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        consumed bigint NOT NULL DEFAULT 0, returned bigint NOT NULL DEFAULT 0,
        expires_at bigint, placed_at bigint NOT NULL, closed_at bigint,
        CHECK (consumed >= 0 AND returned >= 0 AND consumed + returned <= amount),
        UNIQUE (site_id, request_id, lot_id));
    CREATE INDEX escrow_slices_by_holder ON escrow_slices (member_id, site_id);
    CREATE INDEX escrow_slices_by_lot ON escrow_slices (lot_id);
    CREATE TABLE escrow_moves (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        slice_id bigint NOT NULL REFERENCES escrow_slices,
        kind text NOT NULL CHECK (kind IN ('place', 'consume', 'restore', 'return')),
        amount bigint NOT NULL CHECK (amount > 0),
        usage_id bigint REFERENCES usages, at bigint NOT NULL);
    CREATE INDEX escrow_moves_by_slice ON escrow_moves (slice_id);
    CREATE TRIGGER escrow_moves_append_only BEFORE UPDATE OR DELETE ON escrow_moves
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    ALTER TABLE lot_history ADD COLUMN slice_id bigint REFERENCES escrow_slices;
    "#,
    // 5: the downlink feed and recalls (multi-site.md 3.4-3.5). A grant
    // shrunk below what its lot has not placed in escrow keeps the rest of
    // the cut as `shrink_pending` (never more than the lot's escrowed) and
    // recalls slices: what they return pays the cut first. A grant deleted
    // recalls every open slice of its lot. Each recall is a `site_feed` row
    // for the slice's site (append-only), read by `GET /v1/feed`. A
    // member's home site (the grants file's `home_site`) may hold all of
    // their unescrowed credit in escrow.
    r#"
    ALTER TABLE members ADD COLUMN home_site text;
    ALTER TABLE lots ADD COLUMN shrink_pending bigint NOT NULL DEFAULT 0;
    ALTER TABLE lots ADD CONSTRAINT lots_shrink_within
        CHECK (shrink_pending >= 0 AND shrink_pending <= escrowed);
    CREATE TABLE site_feed (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        site_id text NOT NULL, kind text NOT NULL CHECK (kind IN ('recall')),
        slice_id bigint NOT NULL REFERENCES escrow_slices,
        note text NOT NULL, at bigint NOT NULL);
    CREATE INDEX site_feed_by_site ON site_feed (site_id, id);
    CREATE UNIQUE INDEX site_feed_one_recall ON site_feed (slice_id) WHERE kind = 'recall';
    CREATE TRIGGER site_feed_append_only BEFORE UPDATE OR DELETE ON site_feed
        FOR EACH ROW EXECUTE FUNCTION refuse_change();
    "#,
];

/// Brings the schema up to date.
pub async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tallyd-central-migrate'))",
        &[],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    let current: i32 = row.get(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await?;
        let version = index as i32 + 1;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await
}
