package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/kernels/bench"
	"github.com/edgeseek/edgeseek/model"
)

func cmdBench(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: edgeseek bench kernels|layer|serve|edge [flags]")
	}
	switch args[0] {
	case "kernels":
		fs := flag.NewFlagSet("bench kernels", flag.ContinueOnError)
		js := fs.Bool("json", false, "one JSON object per line")
		threads := fs.Int("threads", 0, "threads (0: all cores)")
		quick := fs.Bool("quick", false, "smaller sizes, for a smoke run")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return bench.Run(os.Stdout, bench.Options{JSON: *js, Threads: *threads, Quick: *quick})
	case "layer":
		return benchLayer(args[1:])
	case "serve":
		return benchServe(args[1:])
	case "edge":
		return benchEdge(args[1:])
	}
	return fmt.Errorf("unknown benchmark %q (want kernels, layer, serve or edge)", args[0])
}

// benchLayer times one decode step of a V4-Flash-shaped layer (random
// weights, real dimensions) at several context lengths, against the time its
// bytes take to stream at the machine's measured read bandwidth.
func benchLayer(args []string) error {
	fs := flag.NewFlagSet("bench layer", flag.ContinueOnError)
	js := fs.Bool("json", false, "one JSON object per line")
	threads := fs.Int("threads", 0, "threads (0: all cores)")
	layer := fs.Int("layer", 4, "layer index of V4-Flash (4: CSA, 5: HCA)")
	runs := fs.Int("runs", 5, "timed runs per context (median reported)")
	var ctxs intList = []int{4096, 8192, 131072}
	fs.Var(&ctxs, "contexts", "comma-separated context lengths")
	if err := fs.Parse(args); err != nil {
		return err
	}
	be := kernels.NewCPU(*threads)
	bw := measureBandwidth(be)
	res, err := model.BenchDecodeLayer(model.FlashConfig(), *layer, ctxs, be, *runs)
	if err != nil {
		return err
	}
	if !*js {
		fmt.Printf("read bandwidth %.2f GB/s, %d threads\n", bw/1e9, be.Threads())
		fmt.Printf("%-6s %8s %10s %10s %10s %8s %8s\n", "layer", "context", "time", "MB read", "floor", "ratio", "entries")
	}
	for _, r := range res {
		floor := float64(r.Bytes) / bw
		ratio := r.Time.Seconds() / floor
		if *js {
			b, _ := json.Marshal(map[string]any{"name": "layer_decode_" + r.Kind, "shape": fmt.Sprintf("v4-flash layer %d ctx %d", *layer, r.Context),
				"value": r.Time.Seconds() * 1e3, "unit": "ms", "baseline": floor * 1e3, "ratio": ratio, "bytes": r.Bytes})
			fmt.Println(string(b))
			continue
		}
		fmt.Printf("%-6s %8d %10.2f %10.1f %10.2f %8.2f %8d\n", r.Kind, r.Context, r.Time.Seconds()*1e3, float64(r.Bytes)/1e6, floor*1e3, ratio, r.Selected)
	}
	if len(res) >= 2 && !*js {
		fmt.Printf("time(%d)/time(%d) = %.2f\n", res[len(res)-1].Context, res[len(res)-2].Context, res[len(res)-1].Time.Seconds()/res[len(res)-2].Time.Seconds())
	}
	return nil
}

type intList []int

func (l *intList) String() string { return fmt.Sprint(*l) }
func (l *intList) Set(s string) error {
	v, err := parseTokens(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// measureBandwidth returns the streaming read bandwidth in bytes/s: the best
// of a few all-thread passes over 1 GiB, far larger than any cache.
func measureBandwidth(be *kernels.CPU) float64 {
	buf := make([]float32, 1<<28)
	for i := range buf {
		buf[i] = float32(i & 1023)
	}
	best := math.Inf(1)
	for r := 0; r < 5; r++ {
		start := time.Now()
		be.Parallel(len(buf), 1<<20, func(lo, hi int) {
			x := buf[lo:hi]
			_ = kernels.Dot(x, x)
		})
		best = math.Min(best, time.Since(start).Seconds())
	}
	return float64(4*len(buf)) / best
}
