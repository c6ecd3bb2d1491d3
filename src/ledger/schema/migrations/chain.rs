//! Ledger migrations 15-19: the console and the chain (issues 17, 18), and the indexes the ten-year ledger needed. Never edit one that has shipped.

pub(super) const CHAIN: [&str; 8] = [
    // 15: cards enrolled in the console (issue 17): a manager gives an
    // unknown card to a member, kept here with who, why and when, until the
    // grants file says otherwise. The grants file's cards win on a conflict;
    // each enrolment it overrode is noted once (`card_enrolment_overrides`),
    // so the log says so once. Both append-only.
    r#"
    CREATE TABLE IF NOT EXISTS card_enrolments (
        id INTEGER PRIMARY KEY,
        card TEXT NOT NULL,
        member_id TEXT NOT NULL REFERENCES members(id),
        manager TEXT NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS card_enrolments_by_card ON card_enrolments(card);
    CREATE TABLE IF NOT EXISTS card_enrolment_overrides (
        enrolment_id INTEGER PRIMARY KEY REFERENCES card_enrolments(id),
        file_member_id TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TRIGGER IF NOT EXISTS card_enrolments_no_update BEFORE UPDATE ON card_enrolments
        BEGIN SELECT RAISE(ABORT, 'card enrolments are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS card_enrolments_no_delete BEFORE DELETE ON card_enrolments
        BEGIN SELECT RAISE(ABORT, 'card enrolments are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS card_enrolment_overrides_no_update BEFORE UPDATE ON card_enrolment_overrides
        BEGIN SELECT RAISE(ABORT, 'card enrolment overrides are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS card_enrolment_overrides_no_delete BEFORE DELETE ON card_enrolment_overrides
        BEGIN SELECT RAISE(ABORT, 'card enrolment overrides are append-only'); END;
    "#,
    // 16: the transactional outbox of a site in a chain (issue 18). With
    // `[central]` configured the site has one `outbox_site` row (its id, the
    // epoch the centre knows it by, the highest seq the centre
    // acknowledged); then every usage, hold resolution and refund also
    // writes an outbox entry, by these triggers, in the same transaction as
    // the change itself. Without that row (single-site mode, the default)
    // the triggers' WHEN is false and nothing more is written. An entry
    // names its usage; its body is read from the usage, resolution or
    // refund row when shipped (`outbox::pending`): those rows are
    // append-only, so the body cannot change, and each debit writes one
    // small row more.
    r#"
    CREATE TABLE IF NOT EXISTS outbox_site (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        site_id TEXT NOT NULL CHECK (length(site_id) > 0),
        epoch INTEGER NOT NULL CHECK (epoch >= 1),
        acked_seq INTEGER NOT NULL DEFAULT 0 CHECK (acked_seq >= 0)
    );
    CREATE TABLE IF NOT EXISTS outbox (
        epoch INTEGER NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 1),
        kind TEXT NOT NULL CHECK (kind IN ('usage', 'settle', 'void', 'refund')),
        usage_id INTEGER NOT NULL REFERENCES usages(id),
        at INTEGER NOT NULL,
        PRIMARY KEY (epoch, seq)
    ) WITHOUT ROWID;
    CREATE TRIGGER IF NOT EXISTS outbox_usage AFTER INSERT ON usages
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (epoch, seq, kind, usage_id, at)
        SELECT s.epoch,
            COALESCE((SELECT MAX(o.seq) FROM outbox o WHERE o.epoch = s.epoch), 0) + 1,
            'usage', NEW.id, NEW.at
        FROM outbox_site s;
    END;
    CREATE TRIGGER IF NOT EXISTS outbox_resolution AFTER INSERT ON hold_resolutions
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (epoch, seq, kind, usage_id, at)
        SELECT s.epoch,
            COALESCE((SELECT MAX(o.seq) FROM outbox o WHERE o.epoch = s.epoch), 0) + 1,
            CASE NEW.outcome WHEN 'settled' THEN 'settle' ELSE 'void' END,
            NEW.usage_id, NEW.at
        FROM outbox_site s;
    END;
    CREATE TRIGGER IF NOT EXISTS outbox_refund AFTER INSERT ON refunds
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (epoch, seq, kind, usage_id, at)
        SELECT s.epoch,
            COALESCE((SELECT MAX(o.seq) FROM outbox o WHERE o.epoch = s.epoch), 0) + 1,
            'refund', NEW.usage_id, NEW.at
        FROM outbox_site s;
    END;
    "#,
    // 17: two things the ten-year ledger read too slowly (issues 15, 17).
    // (a) The console's daily chart: what each day's usages finally cost
    // (as `usage_months.charged`: a debit's amount, a hold's settled
    // amount, 0 once refunded). The usages by time carry their credit
    // kind, whether a hold, and amount, so a day's debits sum from the
    // index alone; what settles and refunds change of that is kept per UTC
    // quarter hour of the usage (a day starts on a quarter hour in every
    // zone in use) by triggers in the same transaction as each settle and
    // refund. A plain debit writes no extra page (a roll-up of every usage
    // by quarter hour cost the ledger bench a tenth of its debits).
    // (b) The overage rows by member carry their unit and amount, so a
    // statement's opening and closing balances read the index alone (on a
    // ten-year ledger each member has thousands of overage rows).
    r#"
    CREATE INDEX IF NOT EXISTS usages_by_at_charge ON usages(at, credit_kind, is_hold, amount);
    DROP INDEX IF EXISTS usages_by_at;
    CREATE TABLE IF NOT EXISTS quarter_adjustments (
        quarter INTEGER NOT NULL,
        credit_kind TEXT NOT NULL,
        amount INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (quarter, credit_kind)
    ) WITHOUT ROWID;
    DELETE FROM quarter_adjustments;
    INSERT INTO quarter_adjustments (quarter, credit_kind, amount)
    SELECT u.at / 900, u.credit_kind,
           SUM(CASE WHEN u.is_hold = 1 AND r.usage_id IS NULL THEN COALESCE(hr.actual, 0)
                    WHEN u.is_hold = 0 AND r.usage_id IS NOT NULL THEN -u.amount ELSE 0 END)
    FROM usages u
    LEFT JOIN refunds r ON r.usage_id = u.id
    LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
    WHERE u.is_hold = 1 OR r.usage_id IS NOT NULL
    GROUP BY 1, 2;
    CREATE TRIGGER IF NOT EXISTS quarter_adjustments_settle AFTER INSERT ON hold_resolutions
        WHEN NEW.outcome = 'settled' BEGIN
        INSERT INTO quarter_adjustments (quarter, credit_kind, amount)
        SELECT u.at / 900, u.credit_kind, NEW.actual FROM usages u WHERE u.id = NEW.usage_id
        ON CONFLICT DO UPDATE SET amount = amount + excluded.amount;
    END;
    CREATE TRIGGER IF NOT EXISTS quarter_adjustments_refund AFTER INSERT ON refunds BEGIN
        INSERT INTO quarter_adjustments (quarter, credit_kind, amount)
        SELECT u.at / 900, u.credit_kind,
               -(CASE WHEN u.is_hold = 1 THEN COALESCE(hr.actual, 0) ELSE u.amount END)
        FROM usages u
        LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
        WHERE u.id = NEW.usage_id
        ON CONFLICT DO UPDATE SET amount = amount + excluded.amount;
    END;
    CREATE INDEX IF NOT EXISTS overage_by_member_amount ON overage(member_id, at, unit, amount);
    DROP INDEX IF EXISTS overage_by_member;
    "#,
    // 18: the outbox triggers insert one row by VALUES. As INSERT ...
    // SELECT reading `outbox` itself (for the next seq), SQLite built a
    // temporary table for every entry, with fresh page-cache memory each
    // time: the ledger bench measured a debit's CPU at 185 us with the
    // outbox on against 69 us off. Same rows, same seq rule.
    r#"
    DROP TRIGGER IF EXISTS outbox_usage;
    DROP TRIGGER IF EXISTS outbox_resolution;
    DROP TRIGGER IF EXISTS outbox_refund;
    CREATE TRIGGER outbox_usage AFTER INSERT ON usages
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (epoch, seq, kind, usage_id, at) VALUES (
            (SELECT epoch FROM outbox_site),
            COALESCE((SELECT o.seq FROM outbox o WHERE o.epoch = (SELECT epoch FROM outbox_site)
                      ORDER BY o.seq DESC LIMIT 1), 0) + 1,
            'usage', NEW.id, NEW.at);
    END;
    CREATE TRIGGER outbox_resolution AFTER INSERT ON hold_resolutions
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (epoch, seq, kind, usage_id, at) VALUES (
            (SELECT epoch FROM outbox_site),
            COALESCE((SELECT o.seq FROM outbox o WHERE o.epoch = (SELECT epoch FROM outbox_site)
                      ORDER BY o.seq DESC LIMIT 1), 0) + 1,
            CASE NEW.outcome WHEN 'settled' THEN 'settle' ELSE 'void' END,
            NEW.usage_id, NEW.at);
    END;
    CREATE TRIGGER outbox_refund AFTER INSERT ON refunds
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (epoch, seq, kind, usage_id, at) VALUES (
            (SELECT epoch FROM outbox_site),
            COALESCE((SELECT o.seq FROM outbox o WHERE o.epoch = (SELECT epoch FROM outbox_site)
                      ORDER BY o.seq DESC LIMIT 1), 0) + 1,
            'refund', NEW.usage_id, NEW.at);
    END;
    "#,
    // 19: the outbox is a rowid table whose key is the entry's epoch and
    // seq in one integer (`pos = epoch << 40 | seq`; `epoch` and `seq` are
    // computed from it). As a WITHOUT ROWID table keyed (epoch, seq), each
    // entry cost a uniqueness probe and an index insert; appending to a
    // rowid table is cheaper, and a debit in a group commit pays for it
    // (`cargo bench --bench ledger`: outbox on/off 0.80-0.85 before,
    // 0.87-0.91 for this layout in the same rounds). The checks stay, as
    // comparisons: a `CHECK (x IN (...))` of three values or more builds a
    // temporary b-tree for every row. Same entries, same seq rule: the
    // next seq follows the newest entry when it is of the current epoch,
    // else starts at 1.
    r#"
    DROP TRIGGER IF EXISTS outbox_usage;
    DROP TRIGGER IF EXISTS outbox_resolution;
    DROP TRIGGER IF EXISTS outbox_refund;
    CREATE TABLE outbox_by_pos (
        pos INTEGER PRIMARY KEY CHECK ((pos & 1099511627775) >= 1 AND (pos >> 40) >= 1),
        epoch INTEGER GENERATED ALWAYS AS (pos >> 40) VIRTUAL,
        seq INTEGER GENERATED ALWAYS AS (pos & 1099511627775) VIRTUAL,
        kind TEXT NOT NULL
            CHECK (kind = 'usage' OR kind = 'settle' OR kind = 'void' OR kind = 'refund'),
        usage_id INTEGER NOT NULL REFERENCES usages(id),
        at INTEGER NOT NULL
    );
    INSERT INTO outbox_by_pos (pos, kind, usage_id, at)
        SELECT (epoch << 40) + seq, kind, usage_id, at FROM outbox ORDER BY epoch, seq;
    DROP TABLE outbox;
    ALTER TABLE outbox_by_pos RENAME TO outbox;
    CREATE TRIGGER outbox_usage AFTER INSERT ON usages
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (pos, kind, usage_id, at) VALUES (
            max(COALESCE((SELECT o.pos FROM outbox o ORDER BY o.pos DESC LIMIT 1), 0),
                (SELECT epoch FROM outbox_site) << 40) + 1,
            'usage', NEW.id, NEW.at);
    END;
    CREATE TRIGGER outbox_resolution AFTER INSERT ON hold_resolutions
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (pos, kind, usage_id, at) VALUES (
            max(COALESCE((SELECT o.pos FROM outbox o ORDER BY o.pos DESC LIMIT 1), 0),
                (SELECT epoch FROM outbox_site) << 40) + 1,
            CASE NEW.outcome WHEN 'settled' THEN 'settle' ELSE 'void' END,
            NEW.usage_id, NEW.at);
    END;
    CREATE TRIGGER outbox_refund AFTER INSERT ON refunds
        WHEN EXISTS (SELECT 1 FROM outbox_site)
    BEGIN
        INSERT INTO outbox (pos, kind, usage_id, at) VALUES (
            max(COALESCE((SELECT o.pos FROM outbox o ORDER BY o.pos DESC LIMIT 1), 0),
                (SELECT epoch FROM outbox_site) << 40) + 1,
            'refund', NEW.usage_id, NEW.at);
    END;
    "#,
    // 20: escrow (issue 18, multi-site.md 3.3-3.6). `lot_issue` says who
    // issues this site's lots: the site from its grants file (the default,
    // without a row; and the shadow phase of a migration), or the centre, which places
    // slices of the chain's lots here; each slice is a local lot keyed
    // `escrow:<slice id>`, recorded in `escrow_slices` with the request
    // that placed it and when it was returned. `allowance_uses` records
    // what a hold let through beyond credit on the offline allowance,
    // while the centre could not be reached.
    r#"
    CREATE TABLE IF NOT EXISTS lot_issue (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        issue TEXT NOT NULL CHECK (issue = 'site' OR issue = 'central')
    );
    CREATE TABLE IF NOT EXISTS escrow_slices (
        slice_id INTEGER PRIMARY KEY,
        lot_id INTEGER NOT NULL UNIQUE REFERENCES lots(id),
        request_id TEXT NOT NULL,
        returned_at INTEGER
    );
    CREATE TABLE IF NOT EXISTS allowance_uses (
        usage_id INTEGER PRIMARY KEY REFERENCES usages(id),
        member_id TEXT NOT NULL,
        unit TEXT NOT NULL CHECK (unit = 'cents' OR unit = 'minutes'),
        amount INTEGER NOT NULL CHECK (amount > 0)
    );
    "#,
    // 21: a room session started on the offline allowance reserves whole
    // increments of it (`session_allowances`), and ends when they are used
    // up; what its charge leaves uncovered is then an `allowance_uses` row.
    r#"
    CREATE TABLE IF NOT EXISTS session_allowances (
        session_id INTEGER PRIMARY KEY REFERENCES sessions(id),
        member_id TEXT NOT NULL,
        minutes INTEGER NOT NULL CHECK (minutes > 0)
    );
    "#,
    // 22: where this site stands in the centre's feed (`GET /v1/feed`): the
    // last entry applied, advanced in the transaction that applies it; and
    // each member's home site (the grants file's `home_site`), which keeps
    // escrow longer than the other sites (multi-site.md 3.5): a table of its
    // own, as a migration must run again unchanged (SQLite's ADD COLUMN
    // has no IF NOT EXISTS).
    r#"
    CREATE TABLE IF NOT EXISTS member_homes (
        member_id TEXT PRIMARY KEY REFERENCES members(id),
        site_id TEXT NOT NULL
    ) WITHOUT ROWID;
    -- A recall read before its slice arrived here (the answer that placed
    -- it was lost, and is asked again under its request id): the slice is
    -- voided as soon as it arrives.
    CREATE TABLE IF NOT EXISTS recalled_slices (slice_id INTEGER PRIMARY KEY);
    CREATE TABLE IF NOT EXISTS feed_cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        after INTEGER NOT NULL
    );
    "#,
];
