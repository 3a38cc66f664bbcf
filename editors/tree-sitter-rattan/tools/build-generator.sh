#!/usr/bin/env bash
# Build `tree-sitter generate` (tree-sitter-cli 0.20.7's generator) from Debian's source package,
# with Debian's Rust crates: no download from outside the Debian and npm registries.
#
# Why: npm's tree-sitter-cli downloads its binary from GitHub when installed, which this
# project's machines cannot reach. This builds the same generator that made ../src (ABI 14, read
# by Neovim 0.7+ and Helix) into tools/generator/target/release/tree-sitter, in about a minute.
# Needs: root (apt-get), cargo. Run it again to rebuild; then `tree-sitter generate` in
# editors/tree-sitter-rattan with that binary on PATH (or $TREE_SITTER for the tests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gen="$here/generator"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt's _apt user writes the lists there
export PATH="$PATH:${HOME:-/root}/.cargo/bin"
command -v cargo >/dev/null || { echo "build-generator.sh: cargo is missing" >&2; exit 1; }

crates="librust-anyhow-dev librust-lazy-static-dev librust-regex-dev librust-regex-syntax-dev
  librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-serde-json+preserve-order-dev
  librust-smallbitvec-dev librust-indexmap-dev librust-rustc-hash-dev librust-semver-dev librust-log-dev"
missing=""
for c in $crates; do dpkg -s "$c" >/dev/null 2>&1 || missing="$missing $c"; done
if [ -n "$missing" ]; then
    apt-get install -y -qq $missing >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq $missing >/dev/null; }
fi

# Debian's source of tree-sitter 0.20.7, through apt with a private list (no system change).
mkdir -p "$work/lists/partial"
echo "deb-src http://deb.debian.org/debian bookworm main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0")
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq tree-sitter=0.20.7-1 2>/dev/null)
tar -xJf "$work"/tree-sitter_0.20.7.orig.tar.xz -C "$work"
src="$work/tree-sitter-0.20.7"

rm -rf "$gen/src/generate"
cp -r "$src/cli/src/generate" "$gen/src/generate"
cp "$src/lib/include/tree_sitter/parser.h" "$gen/src/parser.h"
cp "$src/LICENSE" "$gen/LICENSE.tree-sitter"
# The generator asks the tree-sitter crate for two constants; main.rs defines them.
sed -i 's/tree_sitter::PARSER_HEADER/crate::PARSER_HEADER/; s/tree_sitter::LANGUAGE_VERSION/crate::LANGUAGE_VERSION/' \
    "$gen/src/generate/mod.rs" "$gen/src/generate/render.rs"
sed -i 's/env!("RUST_BINDING_VERSION")/"0.20.10"/' "$gen/src/generate/binding_files.rs"
(cd "$gen" && RUSTFLAGS="-A warnings" cargo build --release --offline -q)
"$gen/target/release/tree-sitter" --version
