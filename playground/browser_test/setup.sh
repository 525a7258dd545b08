#!/bin/sh
# Installs what the playground browser tests need: Debian's chromium (run
# headless by chromedp) and the Noto CJK and colour emoji fonts. `make test`
# calls it before `go test`; it does nothing when everything is present.
# The tests skip, saying why, when chromium is still missing afterwards.
set -u
need=
command -v chromium >/dev/null 2>&1 || need="$need chromium"
fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || need="$need fonts-noto-cjk"
fc-list 2>/dev/null | grep -qi 'Noto Color Emoji' || need="$need fonts-noto-color-emoji"
[ -z "$need" ] && exit 0
SUDO=
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "playground/browser_test/setup.sh: not root and no sudo; cannot install$need" >&2
		exit 0
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || echo "setup.sh: apt-get update failed" >&2
$SUDO apt-get install -y -qq --no-install-recommends $need fontconfig ||
	echo "setup.sh: installing$need failed; the browser tests will skip" >&2
exit 0
