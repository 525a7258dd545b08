package cuda

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CIArchs are the virtual architectures every kernel must compile for in CI
// (A100 and H100/H200 class), with no GPU present.
var CIArchs = []string{"compute_80", "compute_90"}

// TestNVRTCCompilesEveryKernel compiles every embedded module for each CI
// architecture and checks that each declared kernel is in the PTX. It skips
// only when libnvrtc is absent (kernels/cuda/ci-setup.sh installs it), and
// fails instead when EDGESEEK_REQUIRE_NVRTC=1. When a ptxas binary is found
// (EDGESEEK_PTXAS, or ptxas on PATH) the PTX is also assembled for the
// matching sm_XY, which catches inline-assembly and resource errors.
func TestNVRTCCompilesEveryKernel(t *testing.T) {
	c, err := OpenCompiler()
	if errors.Is(err, ErrNoNVRTC) {
		if os.Getenv("EDGESEEK_REQUIRE_NVRTC") == "1" {
			t.Fatalf("EDGESEEK_REQUIRE_NVRTC=1 but %v", err)
		}
		t.Skipf("libnvrtc is not installed, so the CUDA kernels were NOT compiled (run kernels/cuda/ci-setup.sh): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NVRTC %s from %s; supported archs %v", c.Version(), c.Path, c.SupportedArchs())
	ptxas := os.Getenv("EDGESEEK_PTXAS")
	if ptxas == "" {
		ptxas, _ = exec.LookPath("ptxas")
	}
	mods := Modules()
	if len(mods) == 0 {
		t.Fatal("no embedded .cu modules")
	}
	for _, m := range mods {
		ks, err := Kernels(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) == 0 {
			t.Errorf("%s.cu declares no KERNEL entry points", m)
		}
		for _, arch := range CIArchs {
			t.Run(m+"/"+arch, func(t *testing.T) {
				t.Parallel()
				ptx, log, err := c.Compile(m, arch)
				if err != nil {
					t.Fatalf("%v", err)
				}
				if strings.TrimSpace(log) != "" {
					t.Logf("compiler log:\n%s", log)
				}
				text := string(ptx[:len(ptx)-1])
				for _, k := range ks {
					if !strings.Contains(text, ".entry "+k+"(") {
						t.Errorf("kernel %s missing from the PTX", k)
					}
				}
				dir := os.Getenv("EDGESEEK_PTX_DIR")
				if dir == "" && ptxas != "" {
					dir = t.TempDir()
				}
				if dir == "" {
					return
				}
				f := filepath.Join(dir, m+"."+arch+".ptx")
				if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				if ptxas != "" {
					sm := "sm_" + strings.TrimPrefix(arch, "compute_")
					out, err := exec.Command(ptxas, "-arch="+sm, f, "-o", os.DevNull).CombinedOutput()
					if err != nil {
						t.Errorf("ptxas -arch=%s: %v\n%s", sm, err, out)
					}
				}
			})
		}
	}
}

// TestModulesListed checks the embedded sources are found and parsed.
func TestModulesListed(t *testing.T) {
	want := []string{"attention", "compress", "matmul", "mhc", "moe", "norm"}
	if got := Modules(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Modules() = %v, want %v", got, want)
	}
	ks, err := Kernels("matmul")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ks, ",") != "gemv_f32,gemv_bf16,gemv_f16,gemv_fp8,gemv_fp4,gemm_tiled,gemm_bf16_mma" {
		t.Fatalf("matmul kernels %v", ks)
	}
	src, err := Source("norm")
	if err != nil || !strings.Contains(src, "dec_e4m3") || !strings.Contains(src, "KERNEL void rmsnorm") {
		t.Fatalf("Source(norm): prelude or body missing (err %v)", err)
	}
}

// TestAvailableExplains checks that, without a usable GPU, Available and Open
// fail with a reason instead of crashing.
func TestAvailableExplains(t *testing.T) {
	err := Available()
	if err == nil {
		t.Skip("a CUDA device is available; the no-GPU path is not exercised here")
	}
	if err.Error() == "" {
		t.Fatal("Available returned an empty reason")
	}
	t.Logf("Available: %v", err)
	if b, oerr := Open(Options{}); oerr == nil {
		b.Close()
		t.Fatal("Open succeeded although Available failed")
	}
}
