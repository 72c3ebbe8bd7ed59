#!/usr/bin/env bash
# Mutation testing of the money logic with cargo-mutants: a DEVELOPER TOOL,
# not run by CI (a full run takes hours on 2 cores).
#
# Mutates exactly these files, each mutant tested by the package that owns it:
#   paychan-verifier  crates/paychan-verifier/src/verifier.rs
#                     crates/paychan-verifier/src/store/mod.rs
#   paychan-voucher   crates/paychan-voucher/src/{v1,v2,ed25519,json}.rs
#   paychan-x402      crates/paychan-x402/src/server/mod.rs
#                     crates/paychan-x402/src/server/memo.rs
#                     crates/paychan-x402/src/payment.rs
# with `cargo test -p <package> --all-features` (the voucher crate's JSON form
# and the x402 paywall are behind features), one mutant at a time.
#
# By default cargo-mutants copies the work tree (as it is, uncommitted changes
# included) to a temporary directory and mutates the copy: you may keep
# working here meanwhile. `--in-place` mutates this work tree itself (no copy,
# no rebuild of the workspace crates under another path): then edit nothing
# while it runs; an interrupted run may leave a mutant in a file (`git diff`
# shows it, `git checkout -- <file>` undoes it).
#
# Usage: scripts/mutants.sh [--in-place] [--summary] [verifier|voucher|x402 ...] [-- cargo-mutants args]
#   (no crate named: all three; `-- --iterate` re-tests only what the previous
#   run did not catch and counts the rest as it was; `--summary` prints the
#   last results without running). Results: target/mutants/<crate>/mutants.out/
#   (outcomes.json, caught.txt, missed.txt, timeout.txt, unviable.txt, log/).
#   Prints caught / missed / unviable / timeout per file, then every missed
#   mutant; exits 1 when a missed mutant is not listed, with its reason, in
#   scripts/mutants-accepted.txt.
#
# Needs: redis-server on PATH (the Redis store tests start their own) and
# Node.js (the x402 interop test; `npm ci` of tests/interop is run if needed).
# Uses $CARGO_TARGET_DIR (default ~/.cache/paychan/mutants-target, apart from
# CI's target dir) and installs the pinned cargo-mutants into
# ~/.cache/paychan/tools ($PAYCHAN_TOOLS).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
MUTANTS_VERSION=27.1.0
tools=${PAYCHAN_TOOLS:-$HOME/.cache/paychan/tools}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/paychan/mutants-target}
export CARGO_TERM_COLOR=never
# Per mutant: the build (an incremental rebuild of the owning crate and its
# test binaries, 15 s warm) and the test run of its package (10 s unmutated);
# a mutant that makes a test loop is a timeout after TIMEOUT.
TIMEOUT=${MUTANTS_TIMEOUT:-150}
BUILD_TIMEOUT=${MUTANTS_BUILD_TIMEOUT:-900}
log() { printf '[mutants] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

crates=()
extra=()
in_place=()
summary_only=
while [ $# -gt 0 ]; do
  case $1 in
    --in-place) in_place=(--in-place) ;;
    --summary) summary_only=1 ;;
    verifier | voucher | x402) crates+=("$1") ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument $1 (verifier, voucher, x402, or -- cargo-mutants args)" ;;
  esac
  shift
done
[ ${#crates[@]} -gt 0 ] || crates=(verifier voucher x402)

files_of() {
  case $1 in
    verifier) echo crates/paychan-verifier/src/verifier.rs crates/paychan-verifier/src/store/mod.rs ;;
    voucher) echo crates/paychan-voucher/src/{v1,v2,ed25519,json}.rs ;;
    x402) echo crates/paychan-x402/src/server/mod.rs crates/paychan-x402/src/server/memo.rs \
      crates/paychan-x402/src/payment.rs ;;
  esac
}

# Installs the pinned cargo-mutants and runs it on each crate in turn.
run_mutants() {
  bin=$tools/bin/cargo-mutants
  if ! { [ -x "$bin" ] && "$bin" mutants --version 2>/dev/null | grep -q " $MUTANTS_VERSION\$"; }; then
    log "installing cargo-mutants $MUTANTS_VERSION into $tools (a few minutes, once)"
    cargo install cargo-mutants --version "$MUTANTS_VERSION" --locked --root "$tools" >&2 \
      || die "cannot install cargo-mutants $MUTANTS_VERSION"
  fi
  command -v redis-server >/dev/null || die "redis-server is not on PATH (apt-get install redis-server)"
  command -v node >/dev/null || die "node is not on PATH (apt-get install nodejs npm)"
  if [ ! -d tests/interop/node_modules ]; then
    npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error >/dev/null \
      || die "npm ci --prefix tests/interop failed"
  fi

  all_files=()
  for c in "${crates[@]}"; do
    read -ra fs <<< "$(files_of "$c")"
    all_files+=("${fs[@]}")
  done
  # --in-place edits these files: refuse to start on uncommitted changes to
  # them (so `git diff` shows what an interrupted run left behind).
  if [ ${#in_place[@]} -gt 0 ] && [ -z "${MUTANTS_ALLOW_DIRTY:-}" ] \
    && ! git diff --quiet HEAD -- "${all_files[@]}"; then
    die "uncommitted changes in the mutated files (commit them, or set MUTANTS_ALLOW_DIRTY=1)"
  fi
  before=$(sha256sum "${all_files[@]}")

  for c in "${crates[@]}"; do
    read -ra fs <<< "$(files_of "$c")"
    args=()
    for f in "${fs[@]}"; do args+=(--file "$f"); done
    out=target/mutants/$c
    mkdir -p "$out"
    log "paychan-$c: $("$bin" mutants --list --package "paychan-$c" "${args[@]}" | wc -l) mutants in ${fs[*]}"
    started=$(date +%s)
    # Exit codes: 0 all caught, 2 some missed, 3 some timed out; anything else is a failure.
    rc=0
    nice -n 15 "$bin" mutants "${in_place[@]}" --no-shuffle --colors never \
      --package "paychan-$c" --all-features "${args[@]}" \
      --timeout "$TIMEOUT" --build-timeout "$BUILD_TIMEOUT" \
      --output "$out" "${extra[@]}" || rc=$?
    log "paychan-$c: cargo-mutants exited $rc after $(( $(date +%s) - started )) s"
    case $rc in 0 | 2 | 3) ;; *) status=1 ;; esac
  done

  if [ ${#in_place[@]} -gt 0 ] && [ "$before" != "$(sha256sum "${all_files[@]}")" ]; then
    log "WARNING: a mutated file differs from before the run; see git diff"
    status=1
  fi
}

status=0
[ -n "$summary_only" ] || run_mutants

python3 - "$root/scripts/mutants-accepted.txt" "${crates[@]}" <<'PY' || status=1
import json, os, re, sys
accepted_file, crates = sys.argv[1], sys.argv[2:]
accepted = set()
for line in open(accepted_file):
    line = line.split("#", 1)[0].strip()
    if line:
        accepted.add(line)
kinds = {"CaughtMutant": "caught", "MissedMutant": "missed", "Unviable": "unviable", "Timeout": "timeout"}
strip = re.compile(r":\d+:\d+:")
unexpected, missed_all = [], []
print(f"{'file':48} {'caught':>6} {'missed':>6} {'unviable':>8} {'timeout':>7}")
for crate in crates:
    try:
        outcomes = json.load(open(f"target/mutants/{crate}/mutants.out/outcomes.json"))
    except OSError as e:
        print(f"paychan-{crate}: no outcomes ({e})")
        unexpected.append(f"paychan-{crate}: no outcomes")
        continue
    per_file = {}
    out = f"target/mutants/{crate}/mutants.out"
    # After `--iterate`, what an earlier run caught or found unviable was not
    # tested again (previously_caught.txt lists both): count it as it was.
    def lines(path):
        try:
            return [l.strip() for l in open(path) if l.strip()]
        except OSError:
            return []
    carried = lines(f"{out}/previously_caught.txt")
    old_unviable = set(lines(f"{out}.old/unviable.txt")) if carried else set()
    for line in carried:
        kind = "unviable" if line in old_unviable else "caught"
        counts = per_file.setdefault(line.split(":", 1)[0], {})
        counts[kind] = counts.get(kind, 0) + 1
    for o in outcomes["outcomes"]:
        scenario = o["scenario"]
        if scenario == "Baseline" or "Mutant" not in scenario:
            if o["summary"] != "Success":
                unexpected.append(f"paychan-{crate}: baseline {o['summary']}")
            continue
        m = scenario["Mutant"]
        kind = kinds.get(o["summary"], o["summary"])
        counts = per_file.setdefault(m["file"], {})
        counts[kind] = counts.get(kind, 0) + 1
    for f in sorted(per_file):
        c = per_file[f]
        print(f"{f:48} {c.get('caught', 0):>6} {c.get('missed', 0):>6} "
              f"{c.get('unviable', 0):>8} {c.get('timeout', 0):>7}")
    for line in open(f"target/mutants/{crate}/mutants.out/missed.txt"):
        line = line.strip()
        if line:
            missed_all.append(line)
            if strip.sub(":", line, count=1) not in accepted:
                unexpected.append(line)
print("\nmissed:")
for m in missed_all:
    print(f"  {m}")
if unexpected:
    print("\nnot in scripts/mutants-accepted.txt:")
    for u in unexpected:
        print(f"  {u}")
    sys.exit(1)
PY
exit $status
