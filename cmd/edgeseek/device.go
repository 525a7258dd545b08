package main

import (
	"fmt"
	"os"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/kernels/cuda"
)

// openBackend returns the backend a model command runs on. "auto" uses the
// GPU when a CUDA driver and device are present and says in one line why it
// falls back to the CPU otherwise.
func openBackend(device string, threads int) (kernels.Backend, error) {
	switch device {
	case "cpu":
		return kernels.NewCPU(threads), nil
	case "cuda":
		b, err := cuda.Open(cuda.Options{})
		if err != nil {
			return nil, fmt.Errorf("--device cuda: %w", err)
		}
		return b, nil
	case "auto", "":
		b, err := cuda.Open(cuda.Options{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "edgeseek: using the CPU: %v\n", err)
			return kernels.NewCPU(threads), nil
		}
		return b, nil
	}
	return nil, fmt.Errorf("--device %q: want cpu, cuda or auto", device)
}

// describeDevice is the device line of `edgeseek info`.
func describeDevice(be kernels.Backend) string {
	switch b := be.(type) {
	case *cuda.Backend:
		in := b.Info()
		return fmt.Sprintf("%s (compute %d.%d, %.1f GiB)", in.Name, in.Major, in.Minor, float64(in.Memory)/(1<<30))
	case *kernels.CPU:
		return fmt.Sprintf("%s (%d threads)", b.Name(), b.Threads())
	}
	return be.Name()
}
