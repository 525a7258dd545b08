package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/safetensors"
)

func cmdInfo(args []string) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	ctx := fs.Int("context", 4096, "context length for the memory plan")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	cfg := m.Config
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "architecture\tDeepSeek-%s\n", cfg.Arch)
	fmt.Fprintf(w, "device\t%s\n", describeDevice(m.Backend()))
	fmt.Fprintf(w, "hidden / layers / heads\t%d / %d / %d (head dim %d, rope %d)\n", cfg.Dim, cfg.Layers, cfg.Heads, cfg.HeadDim, cfg.RopeDim)
	fmt.Fprintf(w, "experts\t%d routed, top %d, %d shared, width %d\n", cfg.Experts, cfg.TopK, cfg.Shared, cfg.MoEInter)
	fmt.Fprintf(w, "vocabulary\t%d\n", cfg.VocabSize)
	fmt.Fprintf(w, "window / index top-k\t%d / %d\n", cfg.Window, cfg.IndexTopK)
	w.Flush()

	fmt.Println("\nlayer schedule:")
	for l := 0; l < cfg.Layers; l++ {
		extra := ""
		if l < cfg.HashLayers {
			extra += " hash-routed"
		}
		for _, e := range cfg.EngramLayers {
			if e == l {
				extra += " engram"
			}
		}
		fmt.Printf("  %3d  ratio %-3d %s%s\n", l, cfg.CompressRatio[l], model.LayerKind(cfg, l), extra)
	}

	fmt.Println("\nparameters by dtype:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dtype\ttensors\tparameters\tbytes\t")
	sum := ck.Summary()
	dts := make([]string, 0, len(sum.ByDType))
	for d := range sum.ByDType {
		dts = append(dts, string(d))
	}
	sort.Strings(dts)
	for _, d := range dts {
		st := sum.ByDType[safetensors.DType(d)]
		params := st.Bytes / int64(max(safetensors.DType(d).Size(), 1))
		label := d
		switch safetensors.DType(d) {
		case safetensors.I8:
			params, label = 2*st.Bytes, "I8 (FP4 x2)"
		case safetensors.F8E8M0:
			label = "F8_E8M0 (scales)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", label, st.Tensors, params, st.Bytes)
	}
	fmt.Fprintf(tw, "total\t%d\t\t%d\t\n", sum.Tensors, sum.Bytes)
	tw.Flush()
	total := sum.Bytes

	p := model.Plan(cfg)
	fmt.Println("\nmemory plan:")
	fmt.Printf("  weights resident (memory-mapped)   %s\n", human(total))
	fmt.Printf("  cache fixed per sequence           %s\n", human(int64(p.FixedBytes)))
	fmt.Printf("  cache per token                    %.1f B\n", p.PerTokenBytes)
	for k, v := range p.PerKind {
		fmt.Printf("    %-30s %.1f B/token\n", k, v)
	}
	fmt.Printf("  cache at %d tokens               %s\n", *ctx, human(p.Bytes(*ctx)))
	fmt.Printf("  scratch: decode step               %s\n", human(model.ScratchBytes(cfg, 1, 1)))
	fmt.Printf("  scratch: 64-token prefill chunk    %s\n", human(model.ScratchBytes(cfg, 64, 1)))
	if len(cfg.Ignored) > 0 {
		fmt.Printf("\nconfig keys not used: %v\n", cfg.Ignored)
	}
	return nil
}

func human(b int64) string {
	const u = 1024
	switch {
	case b >= u*u*u:
		return fmt.Sprintf("%.2f GiB", float64(b)/(u*u*u))
	case b >= u*u:
		return fmt.Sprintf("%.2f MiB", float64(b)/(u*u))
	case b >= u:
		return fmt.Sprintf("%.1f KiB", float64(b)/u)
	}
	return fmt.Sprintf("%d B", b)
}
