package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() []Tensor {
	return []Tensor{
		{Name: "b.weight", DType: BF16, Shape: []int{2, 3}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{Name: "a.scale", DType: F8E8M0, Shape: []int{1, 1}, Data: []byte{127}},
		{Name: "c.ids", DType: I64, Shape: []int{1}, Data: []byte{9, 0, 0, 0, 0, 0, 0, 0}},
		{Name: "empty", DType: F32, Shape: []int{0, 4}, Data: nil},
		{Name: "scalar", DType: F32, Shape: []int{}, Data: []byte{0, 0, 128, 63}},
	}
}

func TestWriteOpenRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.safetensors")
	if err := Write(p, sample(), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	if n := binary.LittleEndian.Uint64(raw); n%8 != 0 {
		t.Errorf("header length %d not padded to 8", n)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Mapped() {
		t.Log("mmap unavailable; read fallback used")
	}
	if got := strings.Join(f.Names(), ","); got != "a.scale,b.weight,c.ids,empty,scalar" {
		t.Errorf("names %s", got)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	for _, want := range sample() {
		got, ok := f.Tensor(want.Name)
		if !ok {
			t.Fatalf("missing %s", want.Name)
		}
		if got.DType != want.DType || len(got.Shape) != len(want.Shape) || string(got.Data) != string(want.Data) {
			t.Errorf("%s: got %v %v %v, want %v %v %v", want.Name, got.DType, got.Shape, got.Data, want.DType, want.Shape, want.Data)
		}
		if got.NumElements()*got.DType.Size() != len(got.Data) {
			t.Errorf("%s: element count mismatch", want.Name)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rawFile writes a file with the given header JSON and data length.
func rawFile(t *testing.T, header string, data int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	b := make([]byte, 8, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	b = append(b, make([]byte, data)...)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenErrors(t *testing.T) {
	cases := []struct {
		name, header string
		data         int
		want         []string // substrings of the error
	}{
		{"corrupt json", `{"a":`, 0, []string{"not a JSON object"}},
		{"not object", `[1,2]`, 0, []string{"not a JSON object"}},
		{"unknown dtype", `{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, 1, []string{`tensor "w"`, `unknown dtype "Q4"`}},
		{"wrong span", `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 8, []string{`tensor "w"`, "byte count"}},
		{"out of range", `{"w":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}`, 8, []string{`tensor "w"`, "past the data section"}},
		{"reversed offsets", `{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}`, 8, []string{`tensor "w"`, "increasing"}},
		{"negative dim", `{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, 8, []string{`tensor "w"`, "negative"}},
		{"overflow shape", `{"w":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}`, 8, []string{`tensor "w"`, "byte count"}},
		{"overlap", `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, 8, []string{`tensor "b"`, "overlap", `"a"`}},
		{"bad metadata", `{"__metadata__":{"x":1}}`, 0, []string{"__metadata__"}},
		{"missing offsets", `{"w":{"dtype":"U8","shape":[1]}}`, 1, []string{`tensor "w"`, "data_offsets"}},
		{"float shape", `{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, 1, []string{`tensor "w"`, "shape"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := rawFile(t, c.header, c.data)
			_, err := Open(p)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(c.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestOpenTruncated(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full.safetensors")
	if err := Write(full, sample(), nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(full)
	hlen := int(binary.LittleEndian.Uint64(b))
	for _, n := range []int{0, 5, 8, 8 + hlen/2, 8 + hlen + 3} {
		p := filepath.Join(dir, "trunc.safetensors")
		os.WriteFile(p, b[:n], 0o644)
		_, err := Open(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("cut at %d: error %v does not name the file", n, err)
		}
	}
	// A huge declared header length is refused before any allocation.
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	p := filepath.Join(dir, "huge.safetensors")
	os.WriteFile(p, huge, 0o644)
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("huge header: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "absent.safetensors")); err == nil || !strings.Contains(err.Error(), "absent.safetensors") {
		t.Errorf("missing file: %v", err)
	}
}

func TestSetSingleAndSharded(t *testing.T) {
	ts := sample()
	single := t.TempDir()
	if err := Write(filepath.Join(single, SingleFile), ts, nil); err != nil {
		t.Fatal(err)
	}
	sharded := t.TempDir()
	wm := map[string]string{}
	for i, part := range [][]Tensor{ts[:2], ts[2:]} {
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
		if err := Write(filepath.Join(sharded, name), part, nil); err != nil {
			t.Fatal(err)
		}
		for _, x := range part {
			wm[x.Name] = name
		}
	}
	if err := WriteIndex(sharded, wm, 25); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{single, sharded} {
		s, err := OpenIndex(dir)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != len(ts) {
			t.Errorf("%s: %d tensors", dir, s.Len())
		}
		for _, want := range ts {
			got, path, ok := s.Tensor(want.Name)
			if !ok || string(got.Data) != string(want.Data) || path == "" {
				t.Errorf("%s: tensor %s: %v %v", dir, want.Name, ok, got)
			}
		}
		if dir == sharded && (s.TotalSize != 25 || len(s.Files()) != 2) {
			t.Errorf("sharded: total %d files %d", s.TotalSize, len(s.Files()))
		}
		s.Close()
	}
}

func TestSetIndexErrors(t *testing.T) {
	ts := sample()
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "s1.safetensors"), ts[:2], nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		wm   map[string]string
		want []string
	}{
		{"missing tensor", map[string]string{"ghost.weight": "s1.safetensors"}, []string{`"ghost.weight"`, "s1.safetensors", "not in the shard"}},
		{"missing file", map[string]string{"a.scale": "s9.safetensors"}, []string{`"a.scale"`, "s9.safetensors"}},
		{"escaping path", map[string]string{"a.scale": "../s1.safetensors"}, []string{`"a.scale"`, "not a file name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := WriteIndex(dir, c.wm, 0); err != nil {
				t.Fatal(err)
			}
			_, err := OpenIndex(dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map": 3}`), 0o644)
	if _, err := OpenIndex(dir); err == nil || !strings.Contains(err.Error(), IndexFile) {
		t.Errorf("bad index: %v", err)
	}
	if _, err := OpenIndex(t.TempDir()); err == nil {
		t.Error("empty dir opened")
	}
}

func TestWriteRejects(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	bad := [][]Tensor{
		{{Name: "x", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}},
		{{Name: "x", DType: "Q4", Shape: []int{1}, Data: make([]byte, 1)}},
		{{Name: "x", DType: U8, Shape: []int{1}, Data: []byte{1}}, {Name: "x", DType: U8, Shape: []int{1}, Data: []byte{1}}},
	}
	for i, ts := range bad {
		if err := Write(p, ts, nil); err == nil || !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestHeaderFromJSONLibraryRoundTrip(t *testing.T) {
	// Headers written by other tools carry keys in any order and no padding.
	h := map[string]any{"t": map[string]any{"data_offsets": []int{0, 2}, "shape": []int{1}, "dtype": "F16"}}
	b, _ := json.Marshal(h)
	got, err := ParseHeader(b, 2)
	if err != nil || len(got.Entries) != 1 || got.Entries[0].DType != F16 || got.Entries[0].End != 2 {
		t.Fatalf("%v %+v", err, got)
	}
}
