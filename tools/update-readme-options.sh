#!/usr/bin/env bash
# Rewrites README.md's option tables (between the plugin-options markers)
# from the built-in plugins' descriptors: `batchscope plugins --markdown`.
# tests/test_cli.c fails when the README and the descriptors differ.
#
#   tools/update-readme-options.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
BATCHSCOPE_PLUGIN_PATH= python3 - "$here/README.md" "$build/batchscope" <<'PY'
import subprocess, sys
path, cli = sys.argv[1], sys.argv[2]
tables = subprocess.run([cli, "plugins", "--markdown"], check=True,
                        capture_output=True, text=True).stdout
begin = "<!-- plugin-options:begin (batchscope plugins --markdown) -->\n"
end = "<!-- plugin-options:end -->"
text = open(path).read()
b, e = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:b] + tables + text[e:])
PY
echo "README.md: option tables updated"
