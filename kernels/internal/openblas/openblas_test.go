package openblas

import (
	"math"
	"testing"
)

func TestSgemmSgemv(t *testing.T) {
	if !Available {
		if err := Sgemv(1, 1, []float32{1}, []float32{1}, []float32{0}); err != ErrNotBuilt {
			t.Fatalf("stub Sgemv: %v", err)
		}
		t.Skip(ErrNotBuilt)
	}
	a := []float32{1, 2, 3, 4, 5, 6} // 2×3
	b := []float32{1, 0, 1, 0, 1, 0} // 2×3
	c := make([]float32, 4)
	if err := Sgemm(2, 2, 3, a, b, c); err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{4, 2, 10, 5} {
		if math.Abs(float64(c[i]-want)) > 1e-6 {
			t.Errorf("sgemm c[%d]=%g want %g", i, c[i], want)
		}
	}
	y := make([]float32, 2)
	if err := Sgemv(2, 3, a, []float32{1, 1, 1}, y); err != nil {
		t.Fatal(err)
	}
	if y[0] != 6 || y[1] != 15 {
		t.Errorf("sgemv y=%v want [6 15]", y)
	}
}
