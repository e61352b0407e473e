#!/usr/bin/env bash
# Runs every fuzz target of the project for a set time each and reports.
#
#   scripts/fuzz.sh [DURATION]      (default 30s per target)
#
# Not part of the test run: `go test ./...` runs each target's committed seed
# corpus only. A failing input found here is written by Go under the
# target's testdata/fuzz/ directory; commit it with the fix, so that the
# ordinary test run keeps checking it.
set -uo pipefail
cd "$(dirname "$0")/.."
duration=${1:-30s}
start=$(date +%s)
targets=0
failed=()
while IFS= read -r file; do
	pkg=./$(dirname "$file")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		targets=$((targets + 1))
		printf '%-40s %-32s ' "$pkg" "$target"
		if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$duration" "$pkg" 2>&1); then
			echo "ok ($(grep -o 'execs: [0-9]*' <<<"$out" | tail -1 | sed 's/execs: //') executions)"
		else
			echo "FAILED"
			echo "$out" | tail -20
			failed+=("$pkg $target")
		fi
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null | sort)
elapsed=$(($(date +%s) - start))
echo
echo "$targets targets, $duration each, $elapsed s in all, on $(nproc) cores; ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "  failed: $f"; done
[ ${#failed[@]} -eq 0 ]
