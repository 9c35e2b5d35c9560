#!/bin/sh
# Run the demo: start tests/demo/app.py, trace it for a few seconds, print the report.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
py=${PYTHON:-/usr/bin/python3}
seconds=${DEMO_SECONDS:-4}

"$py" "$here/app.py" --seconds $((seconds + 6)) &
app=$!
trap 'kill "$app" 2>/dev/null || true; wait "$app" 2>/dev/null || true' EXIT INT TERM
sleep 1
echo "\$ sudo ./hangtrace -p $app -d $seconds" >&2
"$top/hangtrace" -p "$app" -d "$seconds"
