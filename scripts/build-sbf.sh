#!/usr/bin/env bash
# Builds the on-chain program to target/deploy/paychan.so without Solana's
# platform-tools ("Route S", docs/002-sbf-build.md): upstream LLVM 23 from a
# dated nightly, a custom `bpfel` target with target_os = "solana", a patched
# copy of std, and sbpf-linker emitting SBPF v3.
#
# Installs what it needs (nightly + rust-src, sbpf-linker) and fails loudly
# when it cannot. Users with the standard toolchain run `anchor build` instead.
#
# Environment:
#   PAYCHAN_CACHE      where the patched std lives (default ~/.cache/paychan)
#   CARGO_TARGET_DIR   cargo's target dir (default ./target); the .so is
#                      always copied to ./target/deploy/paychan.so
#   SBPF_ARCH          v3 (default) or v0
set -euo pipefail

NIGHTLY=nightly-2026-09-15
SBPF_LINKER_VERSION=0.2.6
ARCH=${SBPF_ARCH:-v3}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PAYCHAN_CACHE:-$HOME/.cache/paychan}
target_dir=${CARGO_TARGET_DIR:-$root/target}
spec=$root/tools/sbf/bpfel-solana-solana.json
patcher=$root/tools/sbf/patch-std.py
log() { printf '[build-sbf] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v rustup >/dev/null || die "rustup is required"
command -v python3 >/dev/null || die "python3 is required (patches std)"

if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
  log "installing $NIGHTLY"
  rustup toolchain install "$NIGHTLY" --profile minimal || die "cannot install $NIGHTLY"
fi
sysroot=$(rustup run "$NIGHTLY" rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/src/rust/library" ]; then
  log "installing rust-src for $NIGHTLY"
  rustup component add rust-src --toolchain "$NIGHTLY" || die "cannot install rust-src"
fi

if ! { command -v sbpf-linker >/dev/null && sbpf-linker --version 2>/dev/null | grep -q "$SBPF_LINKER_VERSION"; }; then
  log "installing sbpf-linker $SBPF_LINKER_VERSION (a few minutes)"
  cargo "+$NIGHTLY" install sbpf-linker --version "$SBPF_LINKER_VERSION" --locked \
    || die "cannot install sbpf-linker $SBPF_LINKER_VERSION"
fi

# The patched std, keyed by the nightly and the patch script's content.
stamp=$(cat "$patcher" | sha256sum | cut -c1-16)
src_root=$cache/rust-src-$NIGHTLY-$stamp
if [ ! -f "$src_root/.patched" ]; then
  log "patching a copy of std into $src_root"
  rm -rf "$src_root"
  mkdir -p "$src_root"
  cp -r "$sysroot/lib/rustlib/src/rust/library" "$src_root/library"
  python3 "$patcher" "$src_root" >&2 || die "patch-std.py failed"
  touch "$src_root/.patched"
fi
# cargo does not fingerprint build-std sources: rebuild std when they change.
std_stamp=$target_dir/bpfel-solana-solana/.std-stamp
if [ "$(cat "$std_stamp" 2>/dev/null || true)" != "$stamp-$ARCH" ]; then
  rm -rf "$target_dir/bpfel-solana-solana"
fi

# +allows-misaligned-mem-access: the SBF VM allows unaligned loads and
# platform-tools' LLVM emits them by default; without it upstream LLVM's BPF
# backend copies and compares every possibly-unaligned key byte by byte
# (settle N=8: 22,775 CU without, 13,224 with; docs/002, "Compute units").
# Verifiable bytes: paths of this machine (the clone, the target dir, the
# cargo home, the patched std) end up in panic locations; remapped to fixed
# prefixes, the same commit builds the same .so anywhere (docs/002, "Verifiable
# builds"; CI builds two clones in two target dirs and compares).
cargo_home=${CARGO_HOME:-$HOME/.cargo}
remap="\"--remap-path-prefix=$root=/paychan\",\"--remap-path-prefix=$target_dir=/paychan-target\",\"--remap-path-prefix=$cargo_home=/cargo\",\"--remap-path-prefix=$src_root/library=/rust/library\""

log "building paychan (SBPF $ARCH)"
RUSTC_BOOTSTRAP=1 RUSTC_BOOTSTRAP_SYNTHETIC_TARGET=1 \
__CARGO_TESTS_ONLY_SRC_ROOT="$src_root/library" \
CARGO_TARGET_DIR="$target_dir" \
cargo "+$NIGHTLY" build --release -p paychan --lib \
  -Z build-std=std,panic_abort -Z json-target-spec --target "$spec" \
  --config "target.bpfel-solana-solana.rustflags=[\"-C\",\"linker=sbpf-linker\",\"-C\",\"panic=abort\",\"-C\",\"target-feature=+allows-misaligned-mem-access\",\"-C\",\"relocation-model=static\",\"-C\",\"passes=lower-atomic\",\"-C\",\"link-arg=--llvm-args=-bpf-stack-size=4096\",\"-C\",\"link-arg=--disable-math-builtins\",\"-C\",\"link-arg=--arch=$ARCH\",$remap]" \
  || die "cargo build for the SBF target failed"
mkdir -p "$target_dir/bpfel-solana-solana"
echo "$stamp-$ARCH" > "$std_stamp"

out=$target_dir/bpfel-solana-solana/release/libpaychan.so
[ -f "$out" ] || die "expected $out after the build"
mkdir -p "$root/target/deploy"
cp "$out" "$root/target/deploy/paychan.so.tmp" && mv "$root/target/deploy/paychan.so.tmp" "$root/target/deploy/paychan.so"
log "wrote target/deploy/paychan.so ($(stat -c %s "$root/target/deploy/paychan.so") bytes)"
