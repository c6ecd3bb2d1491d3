#!/usr/bin/env bash
# Builds the Debian package and prints its path
# (target/debian/tallyd_<version>-1_<arch>.deb).
#
# The release binary is built once; the man pages and the bash, zsh and fish
# completions are made by it (`tallyd generate man|completions DIR`, from the
# same clap definition as --help), and the packaged /etc/tallyd/tallyd.toml is
# config/tallyd.toml with its ledger under /var/lib/tallyd (the unit's
# StateDirectory) instead of the checkout's data/. `cargo deb --no-build` then
# packs what [package.metadata.deb] in Cargo.toml lists.
#
# Needs cargo-deb: cargo install --locked cargo-deb --version 3.8.0
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || {
  echo "missing cargo-deb: cargo install --locked cargo-deb --version 3.8.0" >&2
  exit 1
}

target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --quiet
out="$target/release/package"
rm -rf "$out"
"$target/release/tallyd" generate man "$out/man" >/dev/null
"$target/release/tallyd" generate completions "$out/completions" >/dev/null
sed 's|^ledger = "\.\./data/ledger\.db"$|ledger = "/var/lib/tallyd/ledger.db"|' \
  config/tallyd.toml >"$out/tallyd.toml"
grep -qx 'ledger = "/var/lib/tallyd/ledger.db"' "$out/tallyd.toml" || {
  echo 'config/tallyd.toml has no line `ledger = "../data/ledger.db"` to point at /var/lib/tallyd' >&2
  exit 1
}
cargo deb --no-build --quiet
