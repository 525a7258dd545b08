package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// TestRunSmokeJSON runs the benchmark on tiny shapes and checks the JSON
// lines carry the fields callers rely on. It asserts no timings.
func TestRunSmokeJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, Options{JSON: true, Threads: 2}, true); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"name", "shape", "value", "unit", "baseline", "ratio"} {
			if _, ok := r[k]; !ok {
				t.Errorf("line %q lacks %q", sc.Text(), k)
			}
		}
		if v, _ := r["value"].(float64); v <= 0 {
			t.Errorf("line %q: value not positive", sc.Text())
		}
		names[r["name"].(string)] = true
	}
	for _, want := range []string{"read-bandwidth", "gemv-f32", "gemm-f32", "gemv-fp8-b128", "gemv-fp4", "attend"} {
		if !names[want] {
			t.Errorf("missing %s", want)
		}
	}
}

func TestRunTable(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, Options{Threads: 1}, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("read-bandwidth")) || !bytes.Contains(buf.Bytes(), []byte("ratio")) {
		t.Fatalf("table lacks rows or header:\n%s", buf.String())
	}
}
