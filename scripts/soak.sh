#!/usr/bin/env bash
# The chaos soak (RELIABILITY.md): a network of real processes, 100 users
# sending for DURATION (default 10m) while a random node is SIGKILLed and
# restarted every 30 seconds; then every message must have arrived exactly
# once and the memory of the processes that ran throughout must be flat.
# Not part of the test run. Usage: scripts/soak.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10m}
log=$(mktemp)
export BACKCHANNEL_SOAK_REPORT=${BACKCHANNEL_SOAK_REPORT:-$log.report}
status=0
go test -count=1 -run '^TestSoak$' -timeout 2h -v ./e2e -soak "$duration" >"$log" 2>&1 || status=$?
grep -E '^(--- |PASS|FAIL|ok)|soak:' "$log" || true
if [ "$status" != 0 ]; then
	echo "the soak failed; its whole log: $log"
	exit "$status"
fi
echo "--- report ($BACKCHANNEL_SOAK_REPORT)"
cat "$BACKCHANNEL_SOAK_REPORT"
