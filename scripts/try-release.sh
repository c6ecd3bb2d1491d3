#!/usr/bin/env bash
# Try held release end to end on this machine, in a temporary folder:
# a private D-Bus, an ippeveprinter (the "printer"), a private cupsd with a
# held queue in front of it, a socat pseudo-terminal as the card reader, and
# `tallyd run` on a demo config. Submits a held job as alice, taps her card,
# waits for the job to print and the hold to settle, and prints her statement.
# Everything it started is stopped and the folder removed when it ends.
#
# Needs: cups cups-ipp-utils cups-client dbus socat (apt-get install -y ...).
set -euo pipefail
cd "$(dirname "$0")/.."

for bin in cupsd ippeveprinter lpadmin lp dbus-daemon socat; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || {
    echo "missing $bin: apt-get install -y --no-install-recommends cups cups-ipp-utils cups-client dbus socat" >&2
    exit 1
  }
done
export PATH="$PATH:/usr/sbin"

cargo build --release --quiet
tallyd="$PWD/target/release/tallyd"
demo="$(mktemp -d /tmp/tallyd-demo-XXXXXX)"
# cupsd runs its filters as the unprivileged lp user: they must reach the spool.
chmod 755 "$demo"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
eve_port=$(free_port)
cups_port=$(free_port)

echo "== demo folder: $demo"
dbus-daemon --session --nofork --nopidfile --address="unix:path=$demo/dbus.sock" >/dev/null 2>&1 &
pids+=($!)
sleep 0.2
# ippeveprinter and cupsd's filters both want a D-Bus: the private one.
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$demo/dbus.sock"
mkdir -p "$demo/spool"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$demo/dbus.sock" ippeveprinter -r off -n localhost \
  -p "$eve_port" -d "$demo/spool" -f application/pdf,text/plain,application/octet-stream -c /bin/true -2 -s 60,60 \
  "Demo Printer" >"$demo/ippeveprinter.log" 2>&1 &
pids+=($!)

mkdir -p "$demo/cups/"{etc,spool,tmp,cache,state,log}
c="$demo/cups"
cat >"$c/etc/cups-files.conf" <<CONF
ServerRoot $c/etc
RequestRoot $c/spool
TempDir $c/tmp
CacheDir $c/cache
StateDir $c/state
AccessLog $c/log/access_log
ErrorLog $c/log/error_log
PageLog $c/log/page_log
ServerBin /usr/lib/cups
DataDir /usr/share/cups
Printcap $c/etc/printcap
FileDevice Yes
CONF
cat >"$c/etc/cupsd.conf" <<CONF
LogLevel warn
Listen 127.0.0.1:$cups_port
Browsing No
BrowseLocalProtocols none
DefaultAuthType None
WebInterface No
PreserveJobHistory Yes
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  JobPrivateAccess all
  JobPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
CONF
cupsd -f -c "$c/etc/cupsd.conf" -s "$c/etc/cups-files.conf" >"$c/log/stdout" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  lpstat -h "127.0.0.1:$cups_port" -r >/dev/null 2>&1 && break
  sleep 0.1
done
for _ in $(seq 50); do
  ipptool -q "ipp://localhost:$eve_port/ipp/print" get-printer-attributes.test 2>/dev/null && break
  sleep 0.1
done
lpadmin -h "127.0.0.1:$cups_port" -p upstairs -E -v "ipp://localhost:$eve_port/ipp/print" \
  -m lsb/usr/cupsfilters/Generic-PDF_Printer-PDF.ppd -o job-hold-until-default=indefinite
echo "== cupsd on 127.0.0.1:$cups_port with a held queue 'upstairs' in front of ippeveprinter on port $eve_port"

socat pty,raw,echo=0,link="$demo/reader" pty,raw,echo=0,link="$demo/feeder" &
pids+=($!)
for _ in $(seq 50); do [ -e "$demo/feeder" ] && break; sleep 0.05; done

cp config/grants.toml "$demo/grants.toml"
cat >"$demo/tallyd.toml" <<CONF
[site]
name = "Demo Coworking"
timezone = "Europe/Lisbon"
ledger = "ledger.db"
overage_policy = "credits-then-invoice"
[grants]
source = "grants.toml"
[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
[prices.standard.media.letter]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
[[printers]]
id = "upstairs"
uri = "ipp://127.0.0.1:$cups_port/printers/upstairs"
mode = "held"
prices = "standard"
poll_interval = "500ms"
[[readers]]
id = "upstairs-desk"
device = "reader"
framing = "rdm6300"
printer = "upstairs"
CONF

"$tallyd" --config "$demo/tallyd.toml" run --log-format journald 2>"$demo/daemon.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "tallyd ready" "$demo/daemon.log" && break; sleep 0.1; done
echo "== tallyd is running; its log:"
sed 's/^/   /' "$demo/daemon.log"

# A 3-page PDF, held at the queue as alice.
python3 - "$demo/doc.pdf" <<'PY'
import sys
pages = 3
objs = ["<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join("%d 0 R" % (4 + 2 * i) for i in range(pages)), pages),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
for i in range(pages):
    objs.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i))
    text = "BT /F1 36 Tf 72 700 Td (Page %d of %d) Tj ET" % (i + 1, pages)
    objs.append("<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text))
out = "%PDF-1.4\n"; offs = []
for i, o in enumerate(objs):
    offs.append(len(out)); out += "%d 0 obj\n%s\nendobj\n" % (i + 1, o)
x = len(out)
out += "xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
out += "".join("%010d 00000 n \n" % o for o in offs)
out += "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
open(sys.argv[1], "w").write(out)
PY
lp -h "127.0.0.1:$cups_port" -U alice -d upstairs -o print-color-mode=monochrome "$demo/doc.pdf"
echo "== alice's job is held:"
lpstat -h "127.0.0.1:$cups_port" -o upstairs | sed 's/^/   /'

echo "== alice taps her card (14008EC793) at the upstairs reader"
printf '\x0214008EC793CE\x03' >"$demo/feeder"
for _ in $(seq 200); do grep -q "released job settled" "$demo/daemon.log" && break; sleep 0.1; done
echo "== tallyd's log since the tap:"
grep -E "release|settled" "$demo/daemon.log" | sed 's/^/   /'
echo "== alice's statement:"
"$tallyd" --config "$demo/tallyd.toml" statement alice --from 2026-01-01
