package enginetest

import (
	"fmt"
	"os"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// TinyModel writes a tiny random checkpoint of arch (model/synth) into dir,
// loads it on a CPU backend with threads workers and returns it as a
// Runner, with a function that releases the checkpoint. Call it only after
// every engine using the runner is closed: it unmaps the weights.
func TinyModel(dir string, arch checkpoint.Arch, seed int64, threads int) (engine.Runner, func(), error) {
	if err := synth.Write(dir, synth.TinyConfig(arch), seed, synth.Options{}); err != nil {
		return nil, nil, fmt.Errorf("tiny model: %w", err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("tiny model: %w", err)
	}
	m, err := model.Load(*ck.Config, ck, kernels.NewCPU(threads), model.ReferenceNumerics)
	if err != nil {
		ck.Close()
		return nil, nil, fmt.Errorf("tiny model: %w", err)
	}
	return engine.NewModelRunner(m), func() { ck.Close(); os.RemoveAll(dir) }, nil
}
