#!/usr/bin/env bash
# Builds tallyd, syncs the shipped grants file (config/grants.toml) into an
# example ledger, records a few charges, and shows what a manager sees:
# balances, a statement and a monthly report.
#
#   scripts/example.sh            # ledger in ./data/ledger.db (made anew)
#
# The example pins "now" with TALLYD_NOW so the output is the same every run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release
tallyd() { TALLYD_CONFIG=config/tallyd.toml ./target/release/tallyd "$@"; }

rm -f data/ledger.db data/ledger.db-wal data/ledger.db-shm
mkdir -p data
{
  TALLYD_NOW="2026-11-02 09:00" tallyd sync
  TALLYD_NOW="2026-11-02 09:05" tallyd grant bob --amount 5 --reason "welcome credit"
  TALLYD_NOW="2026-11-03 14:10" tallyd charge alice --amount 1.80 --reason "walk-up copier, 6 pages" --key copier-0001
  TALLYD_NOW="2026-11-04 10:00" tallyd charge alice --amount 1h30m --resource-type small-meeting-room --reason "room A, booked at the desk" --key room-a-0001
  TALLYD_NOW="2026-11-05 16:20" tallyd charge bob --amount 7.25 --reason "A3 poster" --key poster-0001
  TALLYD_NOW="2026-11-06 09:00" tallyd refund manual:copier-0001 --reason "paper jam, reprinted"
  TALLYD_NOW="2026-11-20 09:00" tallyd sync
} >/dev/null 2>&1

export TALLYD_NOW="2026-11-20 18:00"
echo "\$ tallyd balance"; tallyd balance; echo
echo "\$ tallyd statement alice --from 2026-11-01 --to 2026-11-20"; tallyd statement alice --from 2026-11-01 --to 2026-11-20; echo
echo "\$ tallyd report --month 2026-11"; tallyd report --month 2026-11
