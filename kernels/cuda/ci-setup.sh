#!/bin/sh
# ci-setup.sh makes sure NVRTC (the CUDA run-time compiler) is installed so
# that `go test ./kernels/cuda` really compiles every embedded kernel instead
# of skipping. It needs no GPU. On Debian 12 (bookworm) the library comes from
# the non-free component as libnvrtc11.2 (about 17 MB).
#
# Idempotent: it does nothing when libnvrtc is already present. Run as root
# (or with sudo available). Exits non-zero if the library cannot be installed.
set -eu

have_nvrtc() {
	for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/local/cuda/lib64 /usr/lib64 /usr/lib; do
		for f in "$d"/libnvrtc.so*; do
			[ -e "$f" ] && return 0
		done
	done
	return 1
}

if have_nvrtc; then
	echo "ci-setup: libnvrtc present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "ci-setup: libnvrtc missing and not root (no sudo); cannot install" >&2
		exit 1
	fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ci-setup: libnvrtc missing and apt-get not available; install NVRTC by hand" >&2
	exit 1
fi

# Enable the non-free component (deb822 sources or the classic list).
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	$SUDO sed -i -E '/^Components:/{/(^|[[:space:]])non-free([[:space:]]|$)/!s/$/ non-free/}' /etc/apt/sources.list.d/debian.sources
fi
if [ -f /etc/apt/sources.list ] && grep -qE '^deb[[:space:]]' /etc/apt/sources.list; then
	$SUDO sed -i -E '/^deb[[:space:]]/{/[[:space:]]non-free([[:space:]]|$)/!s/$/ non-free/}' /etc/apt/sources.list
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends libnvrtc11.2

if have_nvrtc; then
	echo "ci-setup: libnvrtc installed"
	exit 0
fi
echo "ci-setup: libnvrtc11.2 installed but libnvrtc.so not found" >&2
exit 1
