// Command init is PID 1 of the emulated machine that tools/avx512/run.sh
// boots: it reports the CPU features the kernels see, runs the test
// binaries it was packed with, prints a result line the script looks for, and powers
// the machine off.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"
)

// Result lines; run.sh greps for the prefix.
const resultPrefix = "EDGESEEK-AVX512-RESULT"

func main() {
	console()
	fmt.Printf("cpu: avx2=%v fma=%v f16c=%v avx512f=%v bw=%v vl=%v dq=%v vbmi=%v\n",
		cpu.X86.HasAVX2, cpu.X86.HasFMA, cpu.X86.HasF16C, cpu.X86.HasAVX512F,
		cpu.X86.HasAVX512BW, cpu.X86.HasAVX512VL, cpu.X86.HasAVX512DQ, cpu.X86.HasAVX512VBMI)
	if os.Getenv("AVX512_DEBUG") != "" || !cpu.X86.HasAVX512F {
		cpuinfo()
	}
	spec, err := os.ReadFile("/tests")
	if err != nil {
		finish("FAIL", fmt.Errorf("reading /tests: %w", err))
	}
	if !cpu.X86.HasAVX512F {
		finish("FAIL", fmt.Errorf("the emulated CPU shows no AVX-512F to this kernel"))
	}
	// Each line of /tests: a test binary, the directory it runs in (its
	// package's place in the source tree, for relative testdata paths) and
	// its flags.
	failed := 0
	for _, line := range strings.Split(strings.TrimSpace(string(spec)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		start := time.Now()
		cmd := exec.Command(f[0], f[2:]...)
		cmd.Dir = f[1]
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = []string{"HOME=/", "TMPDIR=/tmp"}
		status := "ok"
		if err := cmd.Run(); err != nil {
			status = "FAIL (" + err.Error() + ")"
			failed++
		}
		fmt.Printf("%s %s in %s (emulated time %.1f s)\n", status, f[0], f[1], time.Since(start).Seconds())
	}
	if failed > 0 {
		finish("FAIL", fmt.Errorf("%d test binaries failed", failed))
	}
	finish("PASS", nil)
}

// console makes the serial port the standard output and error: the
// initramfs has no /dev/console node, so the kernel gave init none.
func console() {
	_ = os.Mkdir("/dev", 0o755)
	_ = os.Mkdir("/tmp", 0o1777)
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	f, err := os.OpenFile("/dev/ttyS0", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	_ = syscall.Dup3(int(f.Fd()), 1, 0)
	_ = syscall.Dup3(int(f.Fd()), 2, 0)
	os.Stdout, os.Stderr = os.NewFile(1, "stdout"), os.NewFile(2, "stderr")
}

// cpuinfo prints the kernel's view of the CPU's flags and of its FPU state
// (the emulator's XSAVE leaves are what has gone wrong before).
func cpuinfo() {
	_ = os.Mkdir("/proc", 0o755)
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "flags") {
				fmt.Println("cpuinfo", line)
			}
		}
	}
}

// finish prints the result line, waits for the serial port to send it
// (the machine stops right after) and stops the machine.
func finish(result string, err error) {
	if err != nil {
		fmt.Println("error:", err)
	}
	fmt.Println(resultPrefix, result)
	_ = unix.IoctlSetInt(1, unix.TCSBRK, 1) // tcdrain
	time.Sleep(time.Second)
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
