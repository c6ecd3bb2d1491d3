//! A dump of a whole ledger (every row of every table, as text), so a test
//! can show that nothing changed.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Every row of every table of the ledger, in rowid order, as text.
pub fn dump(ledger: &Path) -> String {
    dump_except(ledger, &[])
}

pub fn dump_except(ledger: &Path, skip: &[&str]) -> String {
    let conn = Connection::open_with_flags(ledger, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the ledger read-only");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for table in tables.iter().filter(|t| !skip.contains(&t.as_str())) {
        // A WITHOUT ROWID table (the running totals) is read in its key order.
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .or_else(|_| conn.prepare(&format!("SELECT * FROM \"{table}\"")))
            .unwrap();
        let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
        out.push_str(&format!("== {table} ({})\n", columns.join(", ")));
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = (0..columns.len())
                .map(|i| match row.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(n) => n.to_string(),
                    ValueRef::Real(x) => format!("{x:?}"),
                    ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => {
                        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                        format!("x'{hex}'")
                    }
                })
                .collect();
            out.push_str(&cells.join(" | "));
            out.push('\n');
        }
    }
    out
}
