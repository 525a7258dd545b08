package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// demoModelDir returns the directory of the default model used when no
// --model is given. Until a trained demo model is embedded, it is a tiny
// random V4 checkpoint written once into the user cache directory.
func demoModelDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "edgeseek", "tiny-v4-seed1")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err == nil {
		return dir, nil
	}
	cfg := synth.TinyConfig(checkpoint.ArchV4)
	tok, err := tinyTokenizer(&cfg)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tiny-*")
	if err != nil {
		if err = os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", err
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), ".tiny-*"); err != nil {
			return "", err
		}
	}
	if err := synth.Write(tmp, cfg, 1, synth.Options{TokenizerJSON: tok}); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("writing the default tiny model: %w", err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}
