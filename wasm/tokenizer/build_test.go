package tokenizer

import (
	"bytes"
	"os"
	"testing"
)

// TestTinyGolden checks that BuildByteLevel is deterministic: training on the committed corpus
// reproduces the committed tiny.json byte for byte (go test -run TestTinyGolden -update rewrites it).
func TestTinyGolden(t *testing.T) {
	got, err := BuildByteLevel(512, tinyCorpus(t), tinySpecials)
	if err != nil {
		t.Fatal(err)
	}
	path := testdata(t, "tiny.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("BuildByteLevel output differs from %s (%d vs %d bytes); rerun with -update if intended", path, len(got), len(want))
	}
	tk, err := Load(got)
	if err != nil {
		t.Fatal(err)
	}
	if tk.VocabSize() != 512+len(tinySpecials) || tk.IDLimit() != 512+len(tinySpecials) {
		t.Fatalf("VocabSize %d IDLimit %d, want %d", tk.VocabSize(), tk.IDLimit(), 512+len(tinySpecials))
	}
	for i, s := range tinySpecials {
		if id, ok := tk.SpecialID(s); !ok || id != 512+i {
			t.Errorf("SpecialID(%q) = %d, %v; want %d", s, id, ok, 512+i)
		}
	}
	if id, ok := tk.BOS(); !ok || id != 512 {
		t.Errorf("BOS = %d, %v", id, ok)
	}
	if id, ok := tk.EOS(); !ok || id != 513 {
		t.Errorf("EOS = %d, %v", id, ok)
	}
}

func TestBuildByteLevelSmall(t *testing.T) {
	js, err := BuildByteLevel(260, []byte("aaaa aaaa abab <think>aaaa"), []string{"<think>"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := Load(js)
	if err != nil {
		t.Fatal(err)
	}
	// Merges: "a a" (7 times... the most frequent), then the pairs that follow from it.
	if tk.VocabSize() != 261 {
		t.Fatalf("VocabSize = %d, want 261", tk.VocabSize())
	}
	if tok, _ := tk.IDToToken(256); tok != "aa" {
		t.Fatalf("first merge = %q, want \"aa\"", tok)
	}
	ids, err := tk.Encode("aaaa<think>")
	if err != nil {
		t.Fatal(err)
	}
	aaaa, ok := tk.TokenToID("aaaa")
	if !ok || len(ids) != 2 || ids[0] != aaaa || ids[1] != 260 {
		t.Fatalf("Encode = %v, want [%d 260]", ids, aaaa)
	}
	for _, bad := range []struct {
		n      int
		corpus string
		sp     []string
	}{{100, "x", nil}, {300, "\xff", nil}, {300, "x", []string{""}}, {300, "x", []string{"a", "a"}}} {
		if _, err := BuildByteLevel(bad.n, []byte(bad.corpus), bad.sp); err == nil {
			t.Errorf("BuildByteLevel(%d, %q, %q) succeeded", bad.n, bad.corpus, bad.sp)
		}
	}
}
