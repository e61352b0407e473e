#!/usr/bin/env bash
# The test command: installs what the tests need beyond Go, where it is
# missing and this runs as root (Debian packages), then runs every test
# with the race detector. .ci/run calls it; README.md names it.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# -race needs cgo and a C compiler.
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# The wipe test makes an ext4 file system of its own.
command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
# The operating guide's walkthrough runs on network namespaces made with
# ip; its systemd units are checked with systemd-analyze.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# The web interface's tests drive Debian's Chromium (or another Chrome;
# e2e/ui_test.go looks for the same names).
have_browser() {
	for b in chromium chromium-browser google-chrome; do
		command -v "$b" >/dev/null 2>&1 && return 0
	done
	return 1
}
have_browser || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "--- installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "not installed (not root, or no apt-get): ${missing[*]}; the tests that need them skip, saying why"
	fi
fi
# Where Chromium can be had, its tests must run: a missing browser fails
# them instead of skipping them.
if have_browser; then
	export BACKCHANNEL_REQUIRE_BROWSER=1
fi

# The end-to-end package runs every node and client as its own process and
# takes longer than go test's default ten minutes on two cores.
go test -race -timeout 25m ./...
