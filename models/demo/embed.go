// Package demo embeds EdgeSeek's default model: a small DeepSeek-V4-architecture
// model trained on the Go standard library (tools/train, docs/MODEL.md), in the
// released checkpoint layout (FP8 trunk, FP4 experts). `edgeseek serve` and
// `edgeseek run` use it when no --model is given.
package demo

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed config.json model.safetensors tokenizer.json
var files embed.FS

// Files lists the checkpoint files the package carries.
var Files = []string{"config.json", "model.safetensors", "tokenizer.json"}

// FS is the embedded checkpoint.
func FS() fs.FS { return files }

// Dir writes the embedded checkpoint once under base (a cache directory) and
// returns its directory. Checkpoints are memory-mapped, so they must live in
// files; the directory name carries a hash of the contents, so a new build
// with a new model never reads a stale copy.
func Dir(base string) (string, error) {
	h := sha256.New()
	for _, f := range Files {
		b, err := files.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	dir := filepath.Join(base, "demo-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, Files[len(Files)-1])); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(base, ".demo-*")
	if err != nil {
		return "", err
	}
	for _, f := range Files {
		b, _ := files.ReadFile(f)
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("demo model: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(dir, Files[len(Files)-1])); serr == nil {
			return dir, nil // another process won the race
		}
		return "", err
	}
	return dir, nil
}
