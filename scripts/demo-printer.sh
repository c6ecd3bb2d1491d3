#!/usr/bin/env bash
# A printer to try tallyd with: a real IPP Everywhere printer (ippeveprinter)
# at ipp://127.0.0.1:8631/ipp/print, the example config's `lobby`, until you
# press Ctrl-C. Nothing comes out on paper: each job's document is counted
# (pages from pdfinfo for a PDF, 60 lines a page for text, times copies) and
# reported as its impressions, which tallyd charges.
#
#   scripts/demo-printer.sh [PORT]        # default 8631
#
# ippeveprinter will not start without a D-Bus ("Unable to initialize
# DNS-SD"): this starts a private one in a temporary folder, and removes both
# when it ends. Print to it as a member with ipptool (see the README's quick
# start). Needs: cups-ipp-utils dbus poppler-utils (apt-get install -y ...).
set -euo pipefail
port="${1:-8631}"

for bin in ippeveprinter ipptool dbus-daemon pdfinfo; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || {
    echo "missing $bin: apt-get install -y --no-install-recommends cups-ipp-utils dbus poppler-utils" >&2
    exit 1
  }
done
export PATH="$PATH:/usr/sbin"

demo="$(mktemp -d /tmp/tallyd-printer-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

dbus-daemon --session --nofork --nopidfile --address="unix:path=$demo/dbus.sock" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$demo/dbus.sock" ] && break; sleep 0.1; done

# The job command: $1 is the document; `ATTR:` on stderr sets the job's
# job-impressions-completed, which tallyd reads when the job is done.
cat >"$demo/count-pages" <<'SH'
#!/bin/sh
case "$CONTENT_TYPE" in
  application/pdf) pages=$(pdfinfo "$1" 2>/dev/null | sed -n 's/^Pages: *//p') ;;
  *) pages=$(( ($(wc -l <"$1") + 59) / 60 )) ;;
esac
[ -n "$pages" ] && [ "$pages" -gt 0 ] || pages=1
copies=${IPP_COPIES:-1}
echo "ATTR: job-impressions-completed=$((pages * copies))" >&2
echo "job $IPP_JOB_ID printed for $IPP_JOB_ORIGINATING_USER_NAME: $pages page(s) x $copies = $((pages * copies)) impression(s)" >>"$DEMO_JOBS_LOG"
SH
chmod +x "$demo/count-pages"
mkdir "$demo/spool"
: >"$demo/jobs.log"

DEMO_JOBS_LOG="$demo/jobs.log" DBUS_SYSTEM_BUS_ADDRESS="unix:path=$demo/dbus.sock" \
  ippeveprinter -r off -n localhost -p "$port" -d "$demo/spool" \
  -f application/pdf,text/plain,application/octet-stream -c "$demo/count-pages" "Lobby" \
  >"$demo/ippeveprinter.log" 2>&1 &
eve=$!
pids+=("$eve")
until ipptool -q "ipp://127.0.0.1:$port/ipp/print" get-printer-attributes.test 2>/dev/null; do
  kill -0 "$eve" 2>/dev/null || { cat "$demo/ippeveprinter.log" >&2; exit 1; }
  sleep 0.1
done
echo "demo printer at ipp://127.0.0.1:$port/ipp/print; its jobs below (Ctrl-C stops it)"
tail -n +1 -f "$demo/jobs.log" &
pids+=($!)
wait "$eve"
