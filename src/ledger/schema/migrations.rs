//! The ledger's migrations, in order: migration N brings a ledger to
//! schema version N (`PRAGMA user_version`). Only ever appended to.

/// Each entry moves the schema from version `i` to `i + 1`. Never edit an
/// entry that has shipped; add a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: members, credits, lots, usages, history, holds, refunds, overage.
    r#"
    CREATE TABLE members (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        overage_policy TEXT CHECK (overage_policy IN ('credits-only', 'credits-then-invoice')),
        overage_cap_cents INTEGER CHECK (overage_cap_cents >= 0),
        overage_cap_minutes INTEGER CHECK (overage_cap_minutes >= 0),
        created_at INTEGER NOT NULL,
        closed_at INTEGER
    );
    CREATE TABLE time_credits (
        id TEXT PRIMARY KEY CHECK (id <> 'printing'),
        name TEXT NOT NULL
    );
    CREATE TABLE time_credit_types (
        credit_id TEXT NOT NULL REFERENCES time_credits(id),
        resource_type TEXT NOT NULL,
        PRIMARY KEY (credit_id, resource_type)
    );
    CREATE TABLE lots (
        id INTEGER PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        credit TEXT NOT NULL,
        granted INTEGER NOT NULL CHECK (granted >= 0),
        remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= granted),
        valid_from INTEGER NOT NULL,
        expires_at INTEGER CHECK (expires_at IS NULL OR expires_at > valid_from),
        source TEXT NOT NULL CHECK (source IN ('plan', 'product', 'account', 'adjustment')),
        source_key TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        voided_at INTEGER
    );
    CREATE INDEX lots_by_member ON lots(member_id, credit);
    -- Not partial on `remaining > 0`: a debit would then rewrite the index
    -- entry on every commit. The sweep filters `remaining` itself.
    CREATE INDEX lots_by_expiry ON lots(expires_at);
    -- Usages have no index on `at`: monthly reports scan them, while every
    -- index would cost each debit's commit one more page written and synced.
    CREATE TABLE usages (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL,
        member_id TEXT REFERENCES members(id),
        origin TEXT NOT NULL CHECK (origin IN ('print', 'session', 'manual')),
        printer TEXT,
        resource TEXT,
        credit_kind TEXT NOT NULL CHECK (credit_kind IN ('printing', 'time')),
        resource_type TEXT,
        amount INTEGER NOT NULL CHECK (amount >= 0),
        is_hold INTEGER NOT NULL CHECK (is_hold IN (0, 1)),
        detail TEXT NOT NULL,
        at INTEGER NOT NULL,
        -- The first result, returned again to a replay of the key.
        covered INTEGER NOT NULL,
        overage INTEGER NOT NULL,
        balance_after INTEGER NOT NULL
    );
    CREATE TABLE hold_resolutions (
        usage_id INTEGER PRIMARY KEY REFERENCES usages(id),
        outcome TEXT NOT NULL CHECK (outcome IN ('settled', 'voided')),
        actual INTEGER NOT NULL CHECK (actual >= 0),
        detail TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE refunds (
        usage_id INTEGER PRIMARY KEY REFERENCES usages(id),
        reason TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        lot_id INTEGER NOT NULL REFERENCES lots(id),
        kind TEXT NOT NULL CHECK (kind IN
            ('grant', 'debit', 'hold', 'settle', 'void', 'expire', 'adjust', 'refund')),
        delta INTEGER NOT NULL,
        granted_delta INTEGER NOT NULL,
        usage_id INTEGER REFERENCES usages(id),
        note TEXT NOT NULL DEFAULT '',
        at INTEGER NOT NULL
    );
    CREATE INDEX history_by_lot ON history(lot_id);
    -- No index on usage_id: a usage's rows are found through its member's
    -- lots, and every index costs each debit's commit one more page.
    CREATE TABLE overage (
        id INTEGER PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        usage_id INTEGER NOT NULL REFERENCES usages(id),
        unit TEXT NOT NULL CHECK (unit IN ('cents', 'minutes')),
        kind TEXT NOT NULL CHECK (kind IN ('debit', 'hold', 'settle', 'void', 'refund')),
        amount INTEGER NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX overage_by_member ON overage(member_id, at);
    CREATE INDEX overage_by_usage ON overage(usage_id);

    CREATE TRIGGER history_no_update BEFORE UPDATE ON history
        BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    CREATE TRIGGER history_no_delete BEFORE DELETE ON history
        BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    CREATE TRIGGER overage_no_update BEFORE UPDATE ON overage
        BEGIN SELECT RAISE(ABORT, 'overage is append-only'); END;
    CREATE TRIGGER overage_no_delete BEFORE DELETE ON overage
        BEGIN SELECT RAISE(ABORT, 'overage is append-only'); END;
    CREATE TRIGGER usages_no_update BEFORE UPDATE ON usages
        BEGIN SELECT RAISE(ABORT, 'usages are append-only'); END;
    CREATE TRIGGER usages_no_delete BEFORE DELETE ON usages
        BEGIN SELECT RAISE(ABORT, 'usages are append-only'); END;
    CREATE TRIGGER holds_no_update BEFORE UPDATE ON hold_resolutions
        BEGIN SELECT RAISE(ABORT, 'a hold resolves exactly once'); END;
    CREATE TRIGGER holds_no_delete BEFORE DELETE ON hold_resolutions
        BEGIN SELECT RAISE(ABORT, 'a hold resolves exactly once'); END;
    CREATE TRIGGER refunds_no_update BEFORE UPDATE ON refunds
        BEGIN SELECT RAISE(ABORT, 'refunds are append-only'); END;
    CREATE TRIGGER refunds_no_delete BEFORE DELETE ON refunds
        BEGIN SELECT RAISE(ABORT, 'refunds are append-only'); END;
    CREATE TRIGGER lots_no_delete BEFORE DELETE ON lots
        BEGIN SELECT RAISE(ABORT, 'lots are never deleted'); END;
    "#,
    // 2: what the grants file says, as last applied, and its history.
    r#"
    CREATE TABLE member_cards (
        card TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id)
    );
    CREATE TABLE member_print_users (
        user TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id)
    );
    CREATE INDEX member_cards_by_member ON member_cards(member_id);
    CREATE INDEX member_print_users_by_member ON member_print_users(member_id);
    CREATE TABLE resource_types (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE resources (id TEXT PRIMARY KEY, resource_type TEXT NOT NULL);
    CREATE TABLE catalog (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE TABLE catalog_changes (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        change TEXT NOT NULL CHECK (change IN ('added', 'edited', 'deleted')),
        before TEXT,
        after TEXT
    );
    CREATE TRIGGER catalog_changes_no_update BEFORE UPDATE ON catalog_changes
        BEGIN SELECT RAISE(ABORT, 'catalog history is append-only'); END;
    CREATE TRIGGER catalog_changes_no_delete BEFORE DELETE ON catalog_changes
        BEGIN SELECT RAISE(ABORT, 'catalog history is append-only'); END;
    CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    "#,
    // 3: the daemon's progress per printer, written with each charge.
    r#"
    CREATE TABLE printer_progress (
        printer TEXT PRIMARY KEY,
        jobs_charged INTEGER NOT NULL,
        last_job_id INTEGER NOT NULL,
        last_job_key TEXT NOT NULL,
        last_charged_at INTEGER NOT NULL
    );
    "#,
    // 4: card readers: unknown cards for enrolment, and room sessions.
    r#"
    CREATE TABLE unknown_cards (
        id INTEGER PRIMARY KEY,
        card TEXT NOT NULL,
        reader TEXT NOT NULL,
        seen_at INTEGER NOT NULL
    );
    CREATE INDEX unknown_cards_by_time ON unknown_cards(seen_at);
    -- A session's duration is measured on the boot clock (monotonic, and it
    -- survives a daemon restart); after a reboot, on the wall clock.
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        resource TEXT NOT NULL,
        member_id TEXT NOT NULL REFERENCES members(id),
        reader TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        started_boot_ms INTEGER NOT NULL,
        boot_id TEXT NOT NULL,
        ended_at INTEGER,
        minutes INTEGER,
        end_reason TEXT,
        usage_key TEXT
    );
    CREATE UNIQUE INDEX sessions_one_open_per_resource ON sessions(resource)
        WHERE ended_at IS NULL;
    "#,
    // 5: printer progress was written with every charge and read by nothing;
    // what a printer charged is in its usages.
    r#"
    DROP TABLE printer_progress;
    "#,
    // 6: the review queue: finished jobs whose counts make no sense, set
    // aside under their key until a manager charges or waives each once.
    r#"
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        printer TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        print_user TEXT,
        reason TEXT NOT NULL,
        reported TEXT NOT NULL,
        proposed INTEGER CHECK (proposed IS NULL OR proposed >= 0),
        detail TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE review_resolutions (
        review_id INTEGER PRIMARY KEY REFERENCES reviews(id),
        outcome TEXT NOT NULL CHECK (outcome IN ('charged', 'waived')),
        note TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
        BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
    CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
        BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
    CREATE TRIGGER review_resolutions_no_update BEFORE UPDATE ON review_resolutions
        BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
    CREATE TRIGGER review_resolutions_no_delete BEFORE DELETE ON review_resolutions
        BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
    "#,
    // 7: expiries reversed because a wall clock that was ahead recorded them:
    // each pairs the `expire` history row with the `adjust` row that gave its
    // credit back, so each is reversed once, and neither counts as a row
    // dated by a clock reading (both are dated at the expiry instant). A
    // table rather than a new history kind: no rebuild of `history`.
    r#"
    CREATE TABLE expiry_reversals (
        expire_id INTEGER PRIMARY KEY REFERENCES history(id),
        reversal_id INTEGER NOT NULL UNIQUE REFERENCES history(id),
        at INTEGER NOT NULL
    );
    CREATE TRIGGER expiry_reversals_no_update BEFORE UPDATE ON expiry_reversals
        BEGIN SELECT RAISE(ABORT, 'expiry reversals are append-only'); END;
    CREATE TRIGGER expiry_reversals_no_delete BEFORE DELETE ON expiry_reversals
        BEGIN SELECT RAISE(ABORT, 'expiry reversals are append-only'); END;
    "#,
    // 8: what the spool analysis found in each job's document, by the job's
    // uuid: analysed once, whatever restarts or queue moves follow.
    r#"
    CREATE TABLE job_analyses (
        job TEXT PRIMARY KEY,
        printer TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        format TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('analysed', 'fallback')),
        pages INTEGER CHECK (pages IS NULL OR pages >= 0),
        colour_pages INTEGER CHECK (colour_pages IS NULL OR colour_pages BETWEEN 0 AND pages),
        mono_impressions INTEGER CHECK (mono_impressions IS NULL OR mono_impressions >= 0),
        colour_impressions INTEGER CHECK (colour_impressions IS NULL OR colour_impressions >= 0),
        blank_backs INTEGER CHECK (blank_backs IS NULL OR blank_backs >= 0),
        reason TEXT,
        at INTEGER NOT NULL
    );
    CREATE TRIGGER job_analyses_no_update BEFORE UPDATE ON job_analyses
        BEGIN SELECT RAISE(ABORT, 'job analyses are written once'); END;
    CREATE TRIGGER job_analyses_no_delete BEFORE DELETE ON job_analyses
        BEGIN SELECT RAISE(ABORT, 'job analyses are written once'); END;
    "#,
    // 9: the money rows are hash-chained (`chain`, `integrity`); existing
    // rows are hashed in id order by `integrity::backfill` in the same
    // transaction. `chain_tips` is where the daemon last verified each chain.
    r#"
    ALTER TABLE history ADD COLUMN hash BLOB;
    ALTER TABLE usages ADD COLUMN hash BLOB;
    ALTER TABLE overage ADD COLUMN hash BLOB;
    CREATE TABLE chain_tips (
        chain TEXT PRIMARY KEY,
        row_id INTEGER NOT NULL,
        hash BLOB NOT NULL
    );
    "#,
    // 10: teams (issue 14), self-contained: the teams the grants file
    // declares as last applied (current membership and shares rewritten by
    // each sync; history is in `catalog_changes`), every usage a team member
    // made while in a team (`team_usages`: its team, who owes its overage,
    // and the calendar month whose pool limit it counts against), and every
    // unit it drew from, or returned to, a lot of the pool (`pool_draws`).
    // `IF NOT EXISTS`: it can run again on a ledger rolled back below it.
    r#"
    CREATE TABLE IF NOT EXISTS teams (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        payer_id TEXT NOT NULL REFERENCES members(id),
        combine INTEGER NOT NULL CHECK (combine IN (0, 1)),
        member_limit_cents INTEGER CHECK (member_limit_cents >= 0),
        member_limit_minutes INTEGER CHECK (member_limit_minutes >= 0),
        billing TEXT NOT NULL CHECK (billing IN ('individual', 'merged')),
        created_at INTEGER NOT NULL,
        closed_at INTEGER
    );
    -- `*` shares every credit.
    CREATE TABLE IF NOT EXISTS team_shares (
        team_id TEXT NOT NULL REFERENCES teams(id),
        credit TEXT NOT NULL,
        PRIMARY KEY (team_id, credit)
    );
    CREATE TABLE IF NOT EXISTS team_members (
        member_id TEXT PRIMARY KEY REFERENCES members(id),
        team_id TEXT NOT NULL REFERENCES teams(id)
    );
    CREATE INDEX IF NOT EXISTS team_members_by_team ON team_members(team_id);
    CREATE TABLE IF NOT EXISTS team_usages (
        usage_id INTEGER PRIMARY KEY REFERENCES usages(id),
        team_id TEXT NOT NULL REFERENCES teams(id),
        member_id TEXT NOT NULL REFERENCES members(id),
        billed_to TEXT NOT NULL REFERENCES members(id),
        month INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS pool_draws (
        id INTEGER PRIMARY KEY,
        usage_id INTEGER NOT NULL REFERENCES usages(id),
        team_id TEXT NOT NULL REFERENCES teams(id),
        member_id TEXT NOT NULL REFERENCES members(id),
        lot_id INTEGER NOT NULL REFERENCES lots(id),
        unit TEXT NOT NULL CHECK (unit IN ('cents', 'minutes')),
        kind TEXT NOT NULL CHECK (kind IN ('debit', 'hold', 'settle', 'void', 'refund')),
        amount INTEGER NOT NULL,
        month INTEGER NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS pool_draws_by_usage ON pool_draws(usage_id);
    CREATE INDEX IF NOT EXISTS pool_draws_by_month ON pool_draws(member_id, unit, month);
    CREATE TRIGGER IF NOT EXISTS team_usages_no_update BEFORE UPDATE ON team_usages
        BEGIN SELECT RAISE(ABORT, 'team usages are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS team_usages_no_delete BEFORE DELETE ON team_usages
        BEGIN SELECT RAISE(ABORT, 'team usages are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS pool_draws_no_update BEFORE UPDATE ON pool_draws
        BEGIN SELECT RAISE(ABORT, 'pool draws are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS pool_draws_no_delete BEFORE DELETE ON pool_draws
        BEGIN SELECT RAISE(ABORT, 'pool draws are append-only'); END;
    "#,
    // 11: years of history (issue 15). A monthly report finds the month's
    // usages by time instead of reading every usage; a statement finds a
    // lot's rows of a period by lot and time instead of all the lot's rows
    // (this index replaces `history_by_lot`); a settle or refund finds its
    // usage's rows by usage instead of reading every row of the member's
    // lots, which grew with the member's years. Each debit writes one usage
    // and one history index entry more, at their ends (the same hot pages
    // each commit): measured by `cargo bench --bench ledger`.
    r#"
    CREATE INDEX IF NOT EXISTS usages_by_at ON usages(at);
    CREATE INDEX IF NOT EXISTS history_by_lot_at ON history(lot_id, at);
    DROP INDEX IF EXISTS history_by_lot;
    CREATE INDEX IF NOT EXISTS history_by_usage ON history(usage_id)
        WHERE usage_id IS NOT NULL;
    "#,
    // 12: a usage's pool draws are found through its history rows
    // (`history_by_usage`: the rows on lots not its member's), so
    // `pool_draws` keeps only the index the monthly limit reads; each pool
    // debit's commit writes one index page less (issue 14's bench).
    r#"
    DROP INDEX IF EXISTS pool_draws_by_usage;
    "#,
    // 13: what each member owes on the overage account, kept as a running
    // total (issue 15): `balance` read every overage row of every member,
    // which grows with the years. A trigger adds each overage row (debits,
    // settles, refunds: refunds are negative rows) in its own transaction;
    // back-filled here; `check-ledger` compares it with the rows. Only a
    // usage that runs into overage writes it. Run again, it recomputes.
    r#"
    CREATE TABLE IF NOT EXISTS overage_owed (
        member_id TEXT NOT NULL,
        unit TEXT NOT NULL,
        amount INTEGER NOT NULL,
        PRIMARY KEY (member_id, unit)
    ) WITHOUT ROWID;
    DELETE FROM overage_owed;
    INSERT INTO overage_owed (member_id, unit, amount)
        SELECT member_id, unit, SUM(amount) FROM overage GROUP BY member_id, unit;
    CREATE TRIGGER IF NOT EXISTS overage_owed_add AFTER INSERT ON overage BEGIN
        INSERT INTO overage_owed (member_id, unit, amount)
        VALUES (NEW.member_id, NEW.unit, NEW.amount)
        ON CONFLICT DO UPDATE SET amount = amount + excluded.amount;
    END;
    "#,
    // 14: a monthly roll-up of usage (issue 15): one row per UTC month and
    // member, origin, printer, resource, team and credit kind, with what a
    // report sums (usages, impressions, what they finally cost, refunds,
    // overage). Kept by triggers, so every usage, settle, refund, team
    // usage and overage row updates it in its own transaction; back-filled
    // here. A report reads the months it covers from here and only the
    // hours between the site's month and the UTC months from usages
    // (`query::months`); `check-ledger` compares each month with its usages.
    // Keyed by member and team, so a report may group by either. Absent
    // keys are '' (NULLs would make the primary key never conflict). Each
    // trigger is one upsert found by the primary key (with UPDATE ...
    // FROM instead, the ledger bench's hold + settle measured 151/s). Run
    // again (a ledger set back to an older version), it recomputes. A
    // detail that is not JSON, or whose impressions are not a whole number,
    // counts as 0 (whole) impressions, and a time SQLite cannot date
    // (past year 9999) goes to month 0: it must never fail the usage.
    r#"
    CREATE TABLE IF NOT EXISTS usage_months (
        month INTEGER NOT NULL,
        member_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        printer TEXT NOT NULL,
        resource TEXT NOT NULL,
        team_id TEXT NOT NULL,
        credit_kind TEXT NOT NULL,
        usages INTEGER NOT NULL DEFAULT 0,
        impressions INTEGER NOT NULL DEFAULT 0,
        charged INTEGER NOT NULL DEFAULT 0,
        refunds INTEGER NOT NULL DEFAULT 0,
        overage_cents INTEGER NOT NULL DEFAULT 0,
        overage_minutes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (month, member_id, origin, printer, resource, team_id, credit_kind)
    ) WITHOUT ROWID;
    DELETE FROM usage_months;
    INSERT INTO usage_months (month, member_id, origin, printer, resource, team_id, credit_kind,
                              usages, impressions, charged, refunds)
    SELECT COALESCE(unixepoch(u.at, 'unixepoch', 'start of month'), 0), COALESCE(u.member_id, ''), u.origin,
           COALESCE(u.printer, ''), COALESCE(u.resource, ''), COALESCE(tu.team_id, ''),
           u.credit_kind, COUNT(*),
           SUM(CASE WHEN r.usage_id IS NOT NULL THEN 0 ELSE
               CAST(COALESCE(CASE WHEN json_valid(COALESCE(hr.detail, u.detail)) THEN json_extract(COALESCE(hr.detail, u.detail), '$.impressions') END, 0) AS INTEGER) END),
           SUM(CASE WHEN r.usage_id IS NOT NULL THEN 0
                    WHEN u.is_hold = 1 THEN COALESCE(hr.actual, 0) ELSE u.amount END),
           SUM(r.usage_id IS NOT NULL)
    FROM usages u
    LEFT JOIN team_usages tu ON tu.usage_id = u.id
    LEFT JOIN refunds r ON r.usage_id = u.id
    LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
    INSERT INTO usage_months (month, member_id, origin, printer, resource, team_id, credit_kind,
                              overage_cents, overage_minutes)
    SELECT COALESCE(unixepoch(o.at, 'unixepoch', 'start of month'), 0), o.member_id, u.origin,
           COALESCE(u.printer, ''), COALESCE(u.resource, ''), COALESCE(tu.team_id, ''),
           u.credit_kind, SUM(CASE WHEN o.unit = 'cents' THEN o.amount ELSE 0 END),
           SUM(CASE WHEN o.unit = 'minutes' THEN o.amount ELSE 0 END)
    FROM overage o JOIN usages u ON u.id = o.usage_id
    LEFT JOIN team_usages tu ON tu.usage_id = u.id
    WHERE true
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT DO UPDATE SET overage_cents = overage_cents + excluded.overage_cents,
        overage_minutes = overage_minutes + excluded.overage_minutes;
    CREATE TRIGGER IF NOT EXISTS usage_months_usage AFTER INSERT ON usages BEGIN
        INSERT INTO usage_months (month, member_id, origin, printer, resource, team_id, credit_kind,
                                  usages, impressions, charged)
        VALUES (COALESCE(unixepoch(NEW.at, 'unixepoch', 'start of month'), 0), COALESCE(NEW.member_id, ''),
                NEW.origin, COALESCE(NEW.printer, ''), COALESCE(NEW.resource, ''), '',
                NEW.credit_kind, 1, CAST(COALESCE(CASE WHEN json_valid(NEW.detail) THEN json_extract(NEW.detail, '$.impressions') END, 0) AS INTEGER),
                CASE WHEN NEW.is_hold = 1 THEN 0 ELSE NEW.amount END)
        ON CONFLICT DO UPDATE SET usages = usages + 1,
            impressions = impressions + excluded.impressions, charged = charged + excluded.charged;
    END;
    -- The usage's row moves from no team ('') to its team's.
    CREATE TRIGGER IF NOT EXISTS usage_months_team AFTER INSERT ON team_usages BEGIN
        INSERT INTO usage_months (month, member_id, origin, printer, resource, team_id, credit_kind,
                                  usages, impressions, charged, refunds)
        SELECT COALESCE(unixepoch(u.at, 'unixepoch', 'start of month'), 0), COALESCE(u.member_id, ''), u.origin,
               COALESCE(u.printer, ''), COALESCE(u.resource, ''), t.team, u.credit_kind, t.sign,
               t.sign * CAST(COALESCE(CASE WHEN json_valid(u.detail) THEN json_extract(u.detail, '$.impressions') END, 0) AS INTEGER),
               t.sign * CASE WHEN u.is_hold = 1 THEN 0 ELSE u.amount END, 0
        FROM usages u, (SELECT '' AS team, -1 AS sign UNION ALL SELECT NEW.team_id, 1) t
        WHERE u.id = NEW.usage_id
        ON CONFLICT DO UPDATE SET usages = usages + excluded.usages,
            impressions = impressions + excluded.impressions,
            charged = charged + excluded.charged, refunds = refunds + excluded.refunds;
    END;
    CREATE TRIGGER IF NOT EXISTS usage_months_settle AFTER INSERT ON hold_resolutions
        WHEN NEW.outcome = 'settled' BEGIN
        INSERT INTO usage_months (month, member_id, origin, printer, resource, team_id, credit_kind,
                                  usages, impressions, charged, refunds)
        SELECT COALESCE(unixepoch(u.at, 'unixepoch', 'start of month'), 0), COALESCE(u.member_id, ''), u.origin,
               COALESCE(u.printer, ''), COALESCE(u.resource, ''), COALESCE(tu.team_id, ''), u.credit_kind, 0,
               CAST(COALESCE(CASE WHEN json_valid(COALESCE(NEW.detail, u.detail)) THEN json_extract(COALESCE(NEW.detail, u.detail), '$.impressions') END, 0) AS INTEGER)
                   - CAST(COALESCE(CASE WHEN json_valid(u.detail) THEN json_extract(u.detail, '$.impressions') END, 0) AS INTEGER),
               NEW.actual, 0
        FROM usages u LEFT JOIN team_usages tu ON tu.usage_id = u.id
        WHERE u.id = NEW.usage_id
        ON CONFLICT DO UPDATE SET usages = usages + excluded.usages,
            impressions = impressions + excluded.impressions,
            charged = charged + excluded.charged, refunds = refunds + excluded.refunds;
    END;
    CREATE TRIGGER IF NOT EXISTS usage_months_refund AFTER INSERT ON refunds BEGIN
        INSERT INTO usage_months (month, member_id, origin, printer, resource, team_id, credit_kind,
                                  usages, impressions, charged, refunds)
        SELECT COALESCE(unixepoch(u.at, 'unixepoch', 'start of month'), 0), COALESCE(u.member_id, ''), u.origin,
               COALESCE(u.printer, ''), COALESCE(u.resource, ''), COALESCE(tu.team_id, ''), u.credit_kind, 0,
               -CAST(COALESCE(CASE WHEN json_valid(COALESCE(hr.detail, u.detail)) THEN json_extract(COALESCE(hr.detail, u.detail), '$.impressions') END, 0) AS INTEGER),
               -(CASE WHEN u.is_hold = 1 THEN COALESCE(hr.actual, 0) ELSE u.amount END), 1
        FROM usages u LEFT JOIN team_usages tu ON tu.usage_id = u.id
            LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
        WHERE u.id = NEW.usage_id
        ON CONFLICT DO UPDATE SET usages = usages + excluded.usages,
            impressions = impressions + excluded.impressions,
            charged = charged + excluded.charged, refunds = refunds + excluded.refunds;
    END;
    CREATE TRIGGER IF NOT EXISTS usage_months_overage AFTER INSERT ON overage BEGIN
        INSERT INTO usage_months (month, member_id, origin, printer, resource, team_id, credit_kind,
                                  overage_cents, overage_minutes)
        SELECT COALESCE(unixepoch(NEW.at, 'unixepoch', 'start of month'), 0), NEW.member_id, u.origin,
               COALESCE(u.printer, ''), COALESCE(u.resource, ''), COALESCE(tu.team_id, ''),
               u.credit_kind, CASE WHEN NEW.unit = 'cents' THEN NEW.amount ELSE 0 END,
               CASE WHEN NEW.unit = 'minutes' THEN NEW.amount ELSE 0 END
        FROM usages u LEFT JOIN team_usages tu ON tu.usage_id = u.id WHERE u.id = NEW.usage_id
        ON CONFLICT DO UPDATE SET overage_cents = overage_cents + excluded.overage_cents,
            overage_minutes = overage_minutes + excluded.overage_minutes;
    END;
    "#,
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
];
