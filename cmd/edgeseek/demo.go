package main

import (
	"os"
	"path/filepath"

	"github.com/edgeseek/edgeseek/models/demo"
)

// demoModelDir returns the directory of the default model used when no
// --model is given: the embedded demo model (models/demo, trained on the Go
// standard library), written once into the user cache directory because
// checkpoints are memory-mapped from files.
func demoModelDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return demo.Dir(filepath.Join(base, "edgeseek"))
}
