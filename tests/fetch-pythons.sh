#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# fetch-pythons.sh: fetch Debian unstable's python3.13, python3.14 and
# python3.15 (newer than this system's glibc) for the integration tests.
#
# Everything goes under ${HANGTRACE_PYCACHE:-$HOME/.cache/hangtrace/pythons}:
#   apt/     a private apt state (own sources list, lists, cache, empty dpkg
#            status, no system apt.conf.d): the system's apt configuration and
#            dpkg database are never read for packages nor written
#   debs/    the downloaded .deb files (kept, so a rebuild downloads nothing)
#   root/    all packages unpacked with `dpkg-deb -x` (nothing is "installed")
#   lib/python3.X -> ../root/usr/lib/python3.X
#   bin/python3.X  launchers: exec root's own ld.so with --library-path on the
#            root's libraries, so /proc/PID/exe of the process is that loader
#   stamp    what was built; when it covers every wanted version and the files
#            are there, the script exits at once without touching the network
#
# The launcher passes --argv0 with its own path, so sys.executable is the
# launcher (subprocess and multiprocessing's spawn/forkserver work) and Python
# finds its stdlib through bin/../lib/python3.X without PYTHONHOME (so -E and
# -I work and nothing leaks into child processes); an inherited PYTHONHOME is
# dropped.
#
# Usage: tests/fetch-pythons.sh [--refresh]
#   --refresh   (or HANGTRACE_PYTHONS_REFRESH=1) look for newer packages in sid
#               even when the cache is complete
# Environment: HANGTRACE_PYCACHE, HANGTRACE_SID_VERSIONS (default
#   "3.13 3.14 3.15"), HANGTRACE_SID_MIRROR (default
#   http://deb.debian.org/debian), HANGTRACE_SID_KEYRING.
#
# Exit status: 0 when at least one wanted version works (the ones sid lacks or
# that fail are named), non-zero when none does.

set -euo pipefail
export LC_ALL=C

VERSIONS=${HANGTRACE_SID_VERSIONS:-3.13 3.14 3.15}
CACHE=${HANGTRACE_PYCACHE:-${HOME:?set HOME or HANGTRACE_PYCACHE}/.cache/hangtrace/pythons}
MIRROR=${HANGTRACE_SID_MIRROR:-http://deb.debian.org/debian}
KEYRING=${HANGTRACE_SID_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
REFRESH=${HANGTRACE_PYTHONS_REFRESH:-0}
# Bump when the layout or the launchers change: older caches are rebuilt.
FORMAT=1
# In the dependency closure but never needed to run python from the root:
# tzdata's maintainer scripts use debconf, which we never run.
SKIP_PKGS=" debconf perl-base dpkg "
# What the smoke test imports; a version that fails it is reported broken.
SMOKE='import sys, asyncio, threading, socket, json, ssl, concurrent.futures, selectors, urllib.request, http.server; print("%d.%d.%d" % sys.version_info[:3])'

log() { printf 'fetch-pythons: %s\n' "$*"; }
warn() { printf 'fetch-pythons: warning: %s\n' "$*" >&2; }
die() { printf 'fetch-pythons: error: %s\n' "$*" >&2; exit 1; }

for arg in "$@"; do
	case $arg in
	--refresh) REFRESH=1 ;;
	-h | --help)
		sed -n '4,/^$/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown argument: $arg (try --help)" ;;
	esac
done

case $CACHE in
/*) ;;
*) CACHE=$PWD/$CACHE ;;
esac
ROOT=$CACHE/root
BIN=$CACHE/bin
LIBLINKS=$CACHE/lib
STATE=$CACHE/apt
DEBS=$CACHE/debs
STAMP=$CACHE/stamp

# Which loader and multiarch directory this architecture uses.
ARCH=$(dpkg --print-architecture 2>/dev/null || true)
case $ARCH in
amd64) TRIPLET=x86_64-linux-gnu LDSO=ld-linux-x86-64.so.2 LDSO_DIR=lib64 ;;
arm64) TRIPLET=aarch64-linux-gnu LDSO=ld-linux-aarch64.so.1 LDSO_DIR=lib ;;
*) die "unsupported architecture '${ARCH:-unknown}' (amd64 and arm64 are)" ;;
esac

# Quote a string for a POSIX shell.
shquote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# The stamp's "python3.X VERSION" line for a version, if any.
stamp_version() {
	if [ -f "$STAMP" ]; then
		awk -v p="python$1" '$1 == p { print $2 }' "$STAMP"
	fi
}

# Fast path: the stamp says every wanted version was built and its files are
# still there.
cache_complete() {
	[ -f "$STAMP" ] || return 1
	grep -qx "format $FORMAT" "$STAMP" || return 1
	grep -qx "arch $ARCH" "$STAMP" || return 1
	grep -qx "cache $CACHE" "$STAMP" || return 1
	local v
	for v in $VERSIONS; do
		[ -n "$(stamp_version "$v")" ] || return 1
		[ -x "$BIN/python$v" ] || return 1
		[ -x "$ROOT/usr/bin/python$v" ] || return 1
		[ -d "$LIBLINKS/python$v/" ] || return 1
	done
}

if [ "$REFRESH" != 1 ] && cache_complete; then
	for v in $VERSIONS; do
		log "cached: $BIN/python$v (Debian sid python$v $(stamp_version "$v"))"
	done
	exit 0
fi

for tool in apt-get apt-cache dpkg-deb timeout realpath; do
	command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian system)"
done
[ -r "$KEYRING" ] || die "no keyring $KEYRING (apt-get install debian-archive-keyring)"

mkdir -p "$CACHE" "$DEBS"
# One fetch at a time per cache (parallel test runners may all call us).
if command -v flock >/dev/null; then
	exec 9>"$CACHE/.lock"
	flock -w 900 9 || die "timed out waiting for the lock on $CACHE/.lock"
	# Someone else may have completed the cache while we waited.
	if [ "$REFRESH" != 1 ] && cache_complete; then
		log "cache completed by another run: $BIN"
		exit 0
	fi
fi

# Something usable already there? Then a failure below is not fatal.
have_old=0
for v in $VERSIONS; do
	[ -n "$(stamp_version "$v")" ] && [ -x "$BIN/python$v" ] && have_old=1
done
fail() {
	if [ "$have_old" = 1 ]; then
		warn "$*; keeping the cache built before"
		exit 0
	fi
	die "$*"
}

# --- private apt ------------------------------------------------------------

mkdir -p "$STATE/etc/apt.conf.d" "$STATE/etc/preferences.d" "$STATE/etc/trusted.gpg.d" \
	"$STATE/lists/partial" "$STATE/cache/archives/partial" "$STATE/log"
: >"$STATE/status"
printf 'deb [signed-by=%s] %s unstable main\n' "$KEYRING" "$MIRROR" >"$STATE/sources.list"

# Only the settings that say how to reach the network are taken from the
# system's apt configuration (read, never written): proxies, and the
# Valid-Until/Date checks that a frozen mirror snapshot needs turned off.
inherited=""
sysconf=$(apt-config dump 2>/dev/null || true)
for key in Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until Acquire::Check-Date; do
	line=$(printf '%s\n' "$sysconf" | grep -i "^$key \"" | head -n 1 || true)
	[ -n "$line" ] && inherited="$inherited$line
"
done

# As root apt would download as _apt, which cannot enter a cache under /root:
# download as whoever runs this script.
sandbox_user=$(id -un)
cat >"$STATE/apt.conf" <<EOF
// Private apt configuration of tests/fetch-pythons.sh: sid only, own state.
Dir::Etc::main "/dev/null";
Dir::Etc::parts "$STATE/etc/apt.conf.d";
Dir::Etc::sourcelist "$STATE/sources.list";
Dir::Etc::sourceparts "-";
Dir::Etc::preferences "$STATE/etc/preferences";
Dir::Etc::preferencesparts "$STATE/etc/preferences.d";
Dir::Etc::trusted "$STATE/etc/trusted.gpg";
Dir::Etc::trustedparts "$STATE/etc/trusted.gpg.d";
Dir::Etc::netrc "$STATE/etc/auth.conf";
Dir::Etc::netrcparts "$STATE/etc/auth.conf.d";
Dir::State "$STATE";
Dir::State::lists "$STATE/lists/";
Dir::State::status "$STATE/status";
Dir::State::extended_states "$STATE/extended_states";
Dir::Cache "$STATE/cache";
Dir::Cache::archives "$STATE/cache/archives/";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Dir::Log "$STATE/log";
APT::Architecture "$ARCH";
APT::Architectures { "$ARCH"; };
APT::Sandbox::User "$sandbox_user";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
Acquire::http::Timeout "30";
Acquire::https::Timeout "30";
Acquire::Retries "3";
$inherited
EOF

papt() {
	local limit=$1
	shift
	APT_CONFIG="$STATE/apt.conf" timeout "$limit" "$@"
}

log "updating the private apt lists for $MIRROR unstable ($STATE)"
if ! papt 300 apt-get -q update >"$STATE/log/update.out" 2>&1 ||
	grep -qE '^(E:|Err:|W: Failed to fetch|W: Some index files failed)' "$STATE/log/update.out"; then
	sed 's/^/  /' "$STATE/log/update.out" >&2
	fail "apt-get update of sid failed"
fi

# --- which versions, which packages -----------------------------------------

# Candidate versions of every wanted python3.X-minimal, in one apt call.
policy=$(for v in $VERSIONS; do printf '%s ' "python$v-minimal"; done)
# shellcheck disable=SC2086 # one word per package
candidates=$(papt 120 apt-cache policy $policy 2>/dev/null | awk '
	/^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1) }
	$1 == "Candidate:" && $2 != "(none)" { print pkg, $2 }')

# The dependency closure of "python3.X-minimal libpython3.X-stdlib", as apt
# would install it on an empty system (the private status file is empty), as
# package=version words; fails if apt cannot resolve it.
closure() {
	local out
	out=$(papt 300 apt-get -s -q install "$@" 2>&1) || {
		printf '%s\n' "$out" | grep -E '^(E|W):|Depends:' | sed 's/^/  /' >&2 || true
		return 1
	}
	printf '%s\n' "$out" | awk '$1 == "Inst" {
		v = ($3 ~ /^\[/) ? $4 : $3; sub(/^\(/, "", v); print $2 "=" v }'
}

missing="" roots=()
declare -A pyver=()
for v in $VERSIONS; do
	ver=$(printf '%s\n' "$candidates" | awk -v p="python$v-minimal" '$1 == p { print $2 }')
	if [ -z "$ver" ]; then
		log "sid has no python$v-minimal: skipping $v"
		missing="$missing $v"
		continue
	fi
	pyver[$v]=$ver
	roots+=("python$v-minimal" "libpython$v-stdlib")
done
# All versions resolved together (one apt run); should that fail, each alone,
# dropping the ones that cannot be installed.
if [ ${#roots[@]} -gt 0 ] && all=$(closure "${roots[@]}" 2>/dev/null); then
	:
else
	all=""
	for v in "${!pyver[@]}"; do
		if one=$(closure "python$v-minimal" "libpython$v-stdlib"); then
			all="$all$one"$'\n'
		else
			log "python$v ${pyver[$v]} is not installable from sid today: skipping $v"
			missing="$missing $v"
			unset "pyver[$v]"
		fi
	done
fi
got=""
for v in $VERSIONS; do
	[ -z "${pyver[$v]:-}" ] || got="$got $v"
done
wanted=()
while read -r p; do
	[ -n "$p" ] || continue
	case $SKIP_PKGS in *" ${p%%=*} "*) continue ;; esac
	wanted+=("$p")
done <<<"$all"
for v in $got; do log "sid python$v: ${pyver[$v]}"; done
[ -n "${got// /}" ] || fail "sid offers none of the versions $VERSIONS"
mapfile -t pkgs < <(printf '%s\n' "${wanted[@]}" | sort -u)

# --- download (apt-get download skips files already there and verified) ------

log "downloading into $DEBS:"
printf '  %s\n' "${pkgs[@]}"
if ! (cd "$DEBS" && papt 900 apt-get -q download "${pkgs[@]}" >"$STATE/log/download.out" 2>&1); then
	sed 's/^/  /' "$STATE/log/download.out" >&2
	fail "apt-get download failed"
fi
fetched=$(grep -c '^Get:' "$STATE/log/download.out" || true)
log "downloaded $fetched new .deb files ($((${#pkgs[@]} - fetched)) already cached)"

# The exact file of each package=version, for unpacking and pruning.
debfile() {
	local name=${1%%=*} ver=${1#*=}
	ver=${ver//:/%3a}
	local f
	for f in "$DEBS/${name}_${ver}_$ARCH.deb" "$DEBS/${name}_${ver}_all.deb"; do
		[ -f "$f" ] && { printf '%s\n' "$f"; return 0; }
	done
	return 1
}

# --- unpack into a new root, check it, then swap it in ----------------------

NEW=$ROOT.new
rm -rf "$NEW"
mkdir -p "$NEW"
keep=""
for p in "${pkgs[@]}"; do
	f=$(debfile "$p") || { rm -rf "$NEW"; fail "downloaded file for $p not found in $DEBS"; }
	dpkg-deb -x "$f" "$NEW" || { rm -rf "$NEW"; fail "dpkg-deb -x $f failed"; }
	keep="$keep ${f##*/}"
done
# Absolute symlinks (e.g. usr/lib/python3.X/sitecustomize.py ->
# /etc/python3.X/...) would lead out of the root into the system: make them
# relative, so they stay inside.
while IFS= read -r -d '' link; do
	target=$(readlink "$link")
	ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$NEW$target")" "$link"
done < <(find "$NEW" -type l -lname '/*' -print0)

# The root's own loader: a real file inside the root (never a symlink that
# would lead to the system's loader).
LOADER=""
for cand in "$LDSO_DIR/$LDSO" "usr/$LDSO_DIR/$LDSO" "lib/$TRIPLET/$LDSO" "usr/lib/$TRIPLET/$LDSO"; do
	[ -e "$NEW/$cand" ] || continue
	real=$(realpath "$NEW/$cand")
	case $real in
	"$NEW"/*) LOADER=${real#"$NEW"/} && break ;;
	esac
done
[ -n "$LOADER" ] || { rm -rf "$NEW"; fail "no $LDSO in the unpacked libc6"; }
libpath=""
for d in "usr/lib/$TRIPLET" "lib/$TRIPLET"; do
	[ -d "$NEW/$d" ] && [ ! -L "$NEW/$d" ] && libpath="$libpath${libpath:+:}$ROOT/$d"
done

rm -rf "$ROOT.old"
[ -d "$ROOT" ] && mv "$ROOT" "$ROOT.old"
mv "$NEW" "$ROOT"
rm -rf "$ROOT.old"

# --- launchers ---------------------------------------------------------------

mkdir -p "$BIN" "$LIBLINKS"
# Launchers and lib links of versions this build lacks would point nowhere.
for f in "$BIN"/python3.* "$LIBLINKS"/python3.*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	v=${f##*/python}
	case " $got " in *" $v "*) ;; *) rm -f "$f" ;; esac
done
glibc=$(printf '%s\n' "${pkgs[@]}" | sed -n 's/^libc6=//p')
ok="" broken=""
for v in $got; do
	ln -sfn "../root/usr/lib/python$v" "$LIBLINKS/python$v"
	launcher=$BIN/python$v
	cat >"$launcher.tmp" <<EOF
#!/bin/sh
# Debian sid python$v ${pyver[$v]}, run by the loader of its own glibc ${glibc}.
# Written by tests/fetch-pythons.sh: rerun it rather than edit this file.
# /proc/PID/exe is the loader; sys.executable is this launcher; the stdlib is
# found through $(dirname "$BIN")/lib/python$v, so PYTHONHOME is not needed.
unset PYTHONHOME
exec $(shquote "$ROOT/$LOADER") --inhibit-cache \\
	--library-path $(shquote "$libpath") \\
	--argv0 $(shquote "$launcher") \\
	$(shquote "$ROOT/usr/bin/python$v") "\$@"
EOF
	chmod 755 "$launcher.tmp"
	mv "$launcher.tmp" "$launcher"
	if out=$(timeout 120 "$launcher" -c "$SMOKE" 2>&1); then
		log "python$v: $launcher works (Python $out, Debian ${pyver[$v]})"
		ok="$ok $v"
	else
		printf '%s\n' "$out" | tail -n 5 | sed 's/^/  /' >&2
		warn "python$v: $launcher fails the smoke test (kept for inspection)"
		broken="$broken $v"
	fi
done

# Drop .deb files no package of this build uses.
for f in "$DEBS"/*.deb; do
	[ -e "$f" ] || continue
	case " $keep " in *" ${f##*/} "*) ;; *) rm -f "$f" ;; esac
done

# The package lists (~25 MB) are only needed during a run; a later run
# fetches them again.
find "$STATE/lists" -maxdepth 1 -type f ! -name lock -delete

{
	echo "# written by tests/fetch-pythons.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "format $FORMAT"
	echo "arch $ARCH"
	echo "cache $CACHE"
	echo "loader $ROOT/$LOADER"
	for v in $ok; do echo "python$v ${pyver[$v]}"; done
	for v in $broken; do echo "broken python$v ${pyver[$v]}"; done
	for v in $missing; do echo "missing python$v"; done
	printf 'package %s\n' "${pkgs[@]}"
} >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"

log "root $ROOT ($(du -sh "$ROOT" | cut -f1)), cache $CACHE ($(du -sh "$CACHE" | cut -f1))"
[ -z "$missing" ] || log "not available from sid:$missing"
[ -z "$broken" ] || log "fetched but broken:$broken"
[ -n "$ok" ] || die "no working interpreter"
log "ready:$(for v in $ok; do printf ' %s' "$BIN/python$v"; done)"
exit 0
