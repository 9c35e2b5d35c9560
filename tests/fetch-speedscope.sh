#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# fetch-speedscope.sh: install the npm package `speedscope` (pinned) into
# ${HANGTRACE_NPMCACHE:-$HOME/.cache/hangtrace/npm}, for its file-format
# schema, which the integration tests validate --format speedscope against.
# Prints the schema's path.  When the schema is there already, the network is
# not touched.
#
# Usage: tests/fetch-speedscope.sh
# Exit status: 0 with the path on stdout, non-zero (with the reason on stderr)
# when npm is missing or the package cannot be had.

set -euo pipefail
export LC_ALL=C

VERSION=1.25.0
CACHE=${HANGTRACE_NPMCACHE:-${HOME:?set HOME or HANGTRACE_NPMCACHE}/.cache/hangtrace/npm}
PKG=$CACHE/node_modules/speedscope
SCHEMA=$PKG/dist/release/file-format-schema.json

have_version() {
	[ -f "$SCHEMA" ] && [ -f "$PKG/package.json" ] &&
		grep -q "\"version\": *\"$VERSION\"" "$PKG/package.json"
}

if ! have_version; then
	command -v npm >/dev/null || { echo "fetch-speedscope.sh: npm not found (tools/install-deps.sh installs it)" >&2; exit 1; }
	mkdir -p "$CACHE"
	npm install --prefix "$CACHE" --no-audit --no-fund --no-save --loglevel=error \
		"speedscope@$VERSION" >&2
	have_version || { echo "fetch-speedscope.sh: speedscope $VERSION has no $SCHEMA" >&2; exit 1; }
fi
echo "$SCHEMA"
