//! Ledger migrations 1-10: the site ledger of the first round and teams. Never edit one that has shipped.

pub(super) const SITE: [&str; 10] = [
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
];
