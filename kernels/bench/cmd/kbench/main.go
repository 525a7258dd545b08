// Command kbench runs the kernel benchmarks (package bench) on their own,
// for kernel work without building the whole binary:
//
//	go run -tags openblas ./kernels/bench/cmd/kbench [-json] [-quick] [-threads N]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/edgeseek/edgeseek/kernels/bench"
)

func main() {
	var opt bench.Options
	flag.BoolVar(&opt.JSON, "json", false, "one JSON object per line")
	flag.BoolVar(&opt.Quick, "quick", false, "short run with smaller buffers")
	flag.IntVar(&opt.Threads, "threads", 0, "threads (0: all cores)")
	flag.Parse()
	if err := bench.Run(os.Stdout, opt); err != nil {
		fmt.Fprintln(os.Stderr, "kbench:", err)
		os.Exit(1)
	}
}
