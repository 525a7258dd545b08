package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCodecs: the tokenize command's three ways to encode (the Go package,
// the Go edge in wazero, the C tokenizer chained in front of it) give the
// same ids, and decoding them gives the text back.
func TestCodecs(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "tokenizer", "tiny.json")
	text := "func (s *Server) Serve() error {\n\treturn nil // 12345 ½ 世界 🙂\n}\n"
	if b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tokenizer", "corpus", "go_source.txt")); err == nil {
		text += string(b[:20000])
	}
	var want []int
	for _, tc := range []struct {
		name           string
		native         bool
		plugin, errStr string
	}{
		{"native", true, "", ""},
		{"builtin plugin", false, "", ""},
		{"edge", false, "edge", ""},
		{"missing plugin", false, "/nonexistent/tok.wasm", "no such file"},
	} {
		c, err := openCodec(path, tc.native, "", tc.plugin)
		if tc.errStr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errStr) {
				t.Fatalf("%s: error %v, want %q", tc.name, err, tc.errStr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ids, err := c.encode(text)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if want == nil {
			want = ids
		} else if !slices.Equal(ids, want) {
			t.Fatalf("%s: ids differ from native", tc.name)
		}
		back, err := c.decode(ids)
		if err != nil || back != text {
			t.Fatalf("%s: decode: %v", tc.name, err)
		}
		c.close()
	}
	if len(want) < 100 {
		t.Fatalf("%d ids", len(want))
	}
}
