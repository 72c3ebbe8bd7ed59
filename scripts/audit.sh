#!/usr/bin/env bash
# Supply-chain checks (run by .ci/run):
#   1. cargo audit, offline, against the RustSec snapshot (../shared/advisory-db,
#      or $PAYCHAN_ADVISORY_DB), on Cargo.lock and fuzz/Cargo.lock; ignored
#      advisories and their reasons are in .cargo/audit.toml;
#   2. no crate of an ignored advisory in the production `paychan` binary
#      (paychan-cli without the `demo` feature);
#   3. cargo deny --offline check licenses bans sources (deny.toml).
# Installs the pinned cargo-audit and cargo-deny into ~/.cache/paychan/tools.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
AUDIT_VERSION=0.22.2
DENY_VERSION=0.20.2
tools=${PAYCHAN_TOOLS:-$HOME/.cache/paychan/tools}
db=${PAYCHAN_ADVISORY_DB:-$root/../shared/advisory-db}
log() { printf '[audit] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install() { # name version
  local bin=$tools/bin/$1
  if ! { [ -x "$bin" ] && "$bin" "${1#cargo-}" --version 2>/dev/null | grep -q " $2"; }; then
    log "installing $1 $2 into $tools (a few minutes, once)"
    cargo install "$1" --version "$2" --locked --root "$tools" >&2 || die "cannot install $1 $2"
  fi
}
install cargo-audit "$AUDIT_VERSION"
install cargo-deny "$DENY_VERSION"
[ -d "$db" ] || die "no advisory database at $db (set PAYCHAN_ADVISORY_DB)"

for lock in Cargo.lock fuzz/Cargo.lock; do
  log "cargo audit $lock"
  "$tools/bin/cargo-audit" audit --db "$db" --no-fetch --stale --no-yanked -f "$lock"
done

log "no advisory, ignored or not, reaches the production binary"
# The crates `paychan` (paychan-cli without the demo feature) links, and a
# report with no advisory ignored (cargo audit reads .cargo/audit.toml from
# the working directory: run it elsewhere).
prod=$(mktemp -d)
trap 'rm -rf "$prod"' EXIT
cargo tree -p paychan-cli -e normal,build --prefix none --format '{p}' 2>/dev/null \
  | sed 's/ (\*)$//; s/ (\/.*)$//' | sort -u > "$prod/packages"
[ -s "$prod/packages" ] || die "cargo tree listed nothing for paychan-cli"
(cd "$prod" && "$tools/bin/cargo-audit" audit --db "$db" --no-fetch --stale --no-yanked \
  -f "$root/Cargo.lock" --json > "$prod/report.json" 2>/dev/null) || true
python3 - "$prod/report.json" "$prod/packages" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
linked = set(l.strip() for l in open(sys.argv[2]) if l.strip())
hits = []
for v in report.get("vulnerabilities", {}).get("list", []):
    pkg = v["package"]
    name = f'{pkg["name"]} v{pkg["version"]}'
    if name in linked:
        hits.append(f'{v["advisory"]["id"]} {name}')
for kind, items in report.get("warnings", {}).items():
    for w in items:
        pkg = w["package"]
        name = f'{pkg["name"]} v{pkg["version"]}'
        if kind in ("unsound",) and name in linked:
            hits.append(f'{w["advisory"]["id"] if w.get("advisory") else kind} {name} ({kind})')
if hits:
    print("[audit] error: in the production paychan binary:\n  " + "\n  ".join(hits), file=sys.stderr)
    sys.exit(1)
print(f"[audit] production paychan binary: {len(linked)} packages, no vulnerable or unsound crate", file=sys.stderr)
PY

# cargo deny --offline reads every package of the lock file, those of other
# platforms too: fetch them first (from the registry, no GitHub).
log "cargo fetch --locked (every platform's packages, for cargo deny)"
cargo fetch --locked --quiet
log "cargo deny check licenses bans sources"
"$tools/bin/cargo-deny" --offline check licenses bans sources
