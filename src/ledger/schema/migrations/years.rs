//! Ledger migrations 11-14: years of history (issue 15). Never edit one that has shipped.

pub(super) const YEARS: [&str; 4] = [
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
];
