#!/bin/sh
# Runs tests on an emulated AVX-512 CPU: the kernels package's (all of
# them), the model's parity test against transformers and the demo model's
# greedy completion, so that the model is checked end to end on the AVX-512
# kernels too.
#
#   sh tools/avx512/run.sh                        # all three
#   sh tools/avx512/run.sh [kernels test flags]   # the kernels package only
#
# No development or CI machine of ours has AVX-512, so the AVX-512 kernels
# are tested under Bochs, which emulates a Skylake-X (AVX-512F/CD/BW/DQ/VL):
# Debian's kernel boots from a small ISO whose initramfs holds the test
# binaries and tools/avx512/init, which runs them and prints a result line
# on the serial port. Slow (the emulator interprets every instruction) but
# exact. See tools/avx512/README.md.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${AVX512_WORK:-$ROOT/build/avx512}
CPU=${AVX512_CPU:-corei7_skylake_x}
TIMEOUT=${AVX512_TIMEOUT:-900}
GO=${GO:-go}

missing=""
command -v bochs >/dev/null 2>&1 || missing="$missing bochs bochsbios vgabios"
command -v xorriso >/dev/null 2>&1 || missing="$missing xorriso"
[ -f /usr/lib/ISOLINUX/isolinux.bin ] || missing="$missing isolinux"
[ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || missing="$missing syslinux-common"
command -v cpio >/dev/null 2>&1 || missing="$missing cpio"
if [ -n "$missing" ]; then
	echo "avx512: installing$missing"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

mkdir -p "$WORK"
cd "$WORK"

# Debian's current kernel image (the package name changes with each ABI bump).
if [ ! -f vmlinuz ]; then
	kernel_pkg() {
		apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
	}
	pkg=$(kernel_pkg)
	[ -n "$pkg" ] || { apt-get update -qq >/dev/null && pkg=$(kernel_pkg); }
	[ -n "$pkg" ] || { echo "avx512: no Debian kernel package found (linux-image-amd64)" >&2; exit 1; }
	rm -rf kdeb && mkdir kdeb
	(cd kdeb && apt-get download "$pkg" >/dev/null 2>&1 && dpkg-deb -x ./*.deb x) ||
		{ echo "avx512: could not download and unpack $pkg" >&2; exit 1; }
	cp kdeb/x/boot/vmlinuz-* vmlinuz
	rm -rf kdeb
fi

rm -rf root iso && mkdir -p root/bin root/src iso/isolinux
# add_test PKG NAME FLAGS...: a static test binary for PKG, run in its package
# directory under /src (relative testdata paths work there).
add_test() {
	pkg=$1 name=$2
	shift 2
	(cd "$ROOT" && CGO_ENABLED=0 $GO test -c -ldflags='-s -w' -o "$WORK/root/bin/$name.test" "$pkg")
	mkdir -p "root/src/${pkg#./}"
	echo "/bin/$name.test /src/${pkg#./} $*" >> root/tests
}
if [ $# -gt 0 ]; then
	add_test ./kernels kernels "$@"
else
	add_test ./kernels kernels -test.short
	add_test ./model model -test.short -test.run '^TestMatchesTransformers$'
	add_test ./cmd/edgeseek edgeseek -test.short -test.run '^TestDemoGreedyCompletion$'
	mkdir -p root/src/testdata
	cp -r "$ROOT/testdata/reference" root/src/testdata/
	mkdir -p root/src/models/demo
	cp "$ROOT/models/demo/eval.json" root/src/models/demo/
fi
(cd "$ROOT" && CGO_ENABLED=0 $GO build -o "$WORK/root/init" ./tools/avx512/init)
# cmd/edgeseek links libc dynamically even without cgo (purego, for CUDA):
# its loader and libraries go in too.
for b in root/bin/*.test; do
	ldd "$b" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' |
		while read -r lib; do
			mkdir -p "root$(dirname "$lib")"
			cp -L "$lib" "root$lib"
		done
done
(cd root && find . | cpio -o -H newc --quiet | gzip -9 > ../iso/initrd.gz)
cp vmlinuz iso/vmlinuz
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
cat > iso/isolinux/isolinux.cfg <<CFG
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz console=ttyS0,115200 ${AVX512_KERNEL_ARGS:-quiet loglevel=3} acpi=off clearcpuid=321,323 nokaslr mitigations=off tsc=reliable no_timer_check
CFG
xorriso -as mkisofs -quiet -o boot.iso -b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table iso 2>/dev/null

# The Debian build of Bochs has its debugger compiled in: "c" starts the
# machine. rfb with timeout=0 is a display that needs no terminal or X.
cat > bochsrc <<CFG
megs: 1024
cpu: model=$CPU, count=1, ips=50000000
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=serial.txt
display_library: rfb, options="timeout=0"
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
log: bochs.log
clock: sync=none
CFG
echo c > debugger.rc
rm -f serial.txt bochs.log

echo "avx512: booting an emulated $CPU (Bochs); this takes minutes"
start=$(date +%s)
# In a session of its own, so that the whole process group (the bochs
# wrapper script and bochs-bin) can be stopped at once.
setsid bochs -q -f bochsrc -rc debugger.rc >bochs.out 2>&1 &
pid=$!
result=""
while :; do
	sleep 5
	if [ -f serial.txt ]; then
		result=$(sed -n 's/^EDGESEEK-AVX512-RESULT \([A-Z]*\).*/\1/p' serial.txt | head -n 1)
		[ -n "$result" ] && break
		# A machine that stopped without a result line: a kernel panic, or
		# init died before printing.
		if grep -q -a -e 'Kernel panic' -e 'reboot: System halted' -e 'reboot: Power down' serial.txt; then
			result=STOPPED
			break
		fi
	fi
	kill -0 $pid 2>/dev/null || break
	if [ $(($(date +%s) - start)) -gt "$TIMEOUT" ]; then
		result=TIMEOUT
		break
	fi
done
kill -TERM -- -$pid 2>/dev/null || kill $pid 2>/dev/null || true
wait $pid 2>/dev/null || true

# The test output: everything from init's first line on.
sed -n '/^cpu: avx2=/,$p' serial.txt 2>/dev/null | tr -d '\r'
echo "avx512: ${result:-no result} after $(($(date +%s) - start)) s (serial log: $WORK/serial.txt)"
[ "$result" = PASS ]
