package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgeseek/edgeseek/internal/npy"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// modelFlags are the flags of every command that runs a model.
type modelFlags struct {
	dir      string
	threads  int
	numerics string
	device   string
}

func (f *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "model", "", "checkpoint directory (config.json + safetensors)")
	fs.IntVar(&f.threads, "threads", 0, "CPU threads (0: all cores)")
	fs.StringVar(&f.device, "device", "auto", "cpu, cuda, or auto (the GPU when one is present)")
	fs.StringVar(&f.numerics, "numerics", "reference", "reference (simulate FP8/FP4 like the official code) or float32 (like transformers)")
}

func (f *modelFlags) open() (*model.Model, *checkpoint.Checkpoint, error) {
	if f.dir == "" {
		return nil, nil, fmt.Errorf("--model is required")
	}
	var num model.Numerics
	switch f.numerics {
	case "reference":
		num = model.ReferenceNumerics
	case "float32":
		num = model.Float32Numerics
	default:
		return nil, nil, fmt.Errorf("--numerics %q: want reference or float32", f.numerics)
	}
	ck, err := checkpoint.Open(f.dir)
	if err != nil {
		return nil, nil, err
	}
	be, err := openBackend(f.device, f.threads)
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	m, err := model.Load(*ck.Config, ck, be, num)
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	return m, ck, nil
}

func cmdMkmodel(args []string) error {
	fs := flag.NewFlagSet("mkmodel", flag.ContinueOnError)
	arch := fs.String("arch", "v4", "architecture: v4 or v4.1")
	out := fs.String("out", "", "output directory")
	seed := fs.Int64("seed", 1, "random seed")
	shards := fs.Int("shards", 1, "number of safetensors shards (1 or 2)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	var a checkpoint.Arch
	switch *arch {
	case "v4":
		a = checkpoint.ArchV4
	case "v4.1", "v41":
		a = checkpoint.ArchV41
	default:
		return fmt.Errorf("--arch %q: want v4 or v4.1", *arch)
	}
	cfg := synth.TinyConfig(a)
	tok, err := tinyTokenizer(&cfg)
	if err != nil {
		return err
	}
	return synth.Write(*out, cfg, *seed, synth.Options{Shards: *shards, TokenizerJSON: tok})
}

func parseTokens(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--tokens: %q is not an integer", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--tokens: no tokens")
	}
	return out, nil
}

func cmdLogits(args []string) error {
	fs := flag.NewFlagSet("logits", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	toks := fs.String("tokens", "", "comma-separated token ids")
	out := fs.String("out", "", "write [n, vocab] float32 logits as .npy here")
	chunk := fs.Int("chunk", 0, "prefill in chunks of this many tokens (0: one chunk)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ids, err := parseTokens(*toks)
	if err != nil {
		return err
	}
	m, ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	start := time.Now()
	logits, err := runLogits(m, mf.dir, ids, *chunk)
	if err != nil {
		return err
	}
	el := time.Since(start)
	V := m.Config.VocabSize
	if *out != "" {
		var b bytes.Buffer
		if err := npy.Write(&b, logits, len(ids), V); err != nil {
			return err
		}
		return os.WriteFile(*out, b.Bytes(), 0o644)
	}
	fmt.Printf("%d positions × %d vocab in %v (%.1f tokens/s)\n", len(ids), V, el.Round(time.Millisecond), float64(len(ids))/el.Seconds())
	for i := range ids {
		row := logits[i*V : (i+1)*V]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if i < 5 || i == len(ids)-1 {
			fmt.Printf("pos %4d token %6d  argmax %6d  logit %.5f\n", i, ids[i], best, row[best])
		}
	}
	return nil
}

// runLogits returns the logits of every position, prefilling in chunks.
func runLogits(m *model.Model, dir string, ids []int, chunk int) ([]float32, error) {
	if chunk <= 0 {
		chunk = len(ids)
	}
	st := m.NewState()
	addr, err := newEngramAddresser(dir, m.Config)
	if err != nil {
		return nil, err
	}
	var all []float32
	for lo := 0; lo < len(ids); lo += chunk {
		hi := min(lo+chunk, len(ids))
		in := model.Input{Tokens: ids[lo:hi]}
		if addr != nil {
			if in.Engram, err = addr(ids[lo:hi]); err != nil {
				return nil, err
			}
		}
		l, err := m.Forward(st, in, model.Options{AllLogits: true})
		if err != nil {
			return nil, err
		}
		all = append(all, l...)
	}
	return all, nil
}
