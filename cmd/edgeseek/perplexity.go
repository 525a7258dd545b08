package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

// PerplexityResult is what `edgeseek perplexity` measures over a text.
type PerplexityResult struct {
	Tokens      int     // tokens predicted
	Bytes       int     // UTF-8 bytes of the text
	NLL         float64 // total negative log-likelihood, nats
	Perplexity  float64
	BitsPerByte float64
}

func cmdPerplexity(args []string) error {
	fs := flag.NewFlagSet("perplexity", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	ctx := fs.Int("ctx", 256, "positions per window")
	stride := fs.Int("stride", 0, "positions each window advances (0: --ctx, windows see no earlier context; "+
		"less than --ctx: each window re-reads the last ctx-stride positions as context)")
	var texts stringList
	fs.Var(&texts, "text", "UTF-8 text file to score (repeatable; each is its own document)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(texts) == 0 {
		return fmt.Errorf("--text is required")
	}
	if mf.dir == "" {
		dir, err := demoModelDir()
		if err != nil {
			return err
		}
		mf.dir = dir
	}
	m, ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	tj, err := os.ReadFile(filepath.Join(mf.dir, "tokenizer.json"))
	if err != nil {
		return fmt.Errorf("perplexity needs the model's tokenizer: %w", err)
	}
	tok, err := tokenizer.Load(tj)
	if err != nil {
		return err
	}
	start := time.Now()
	var r PerplexityResult
	for _, path := range texts {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		d, err := perplexity(m, mf.dir, tok, string(data), *ctx, *stride)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		r.add(d)
	}
	fmt.Printf("tokens %d  bytes %d  perplexity %.4f  bits/byte %.4f  (%.1f tokens/s)\n",
		r.Tokens, r.Bytes, r.Perplexity, r.BitsPerByte, float64(r.Tokens)/time.Since(start).Seconds())
	return nil
}

// perplexity scores one document the way tools/train/evaluate.py does:
// BOS + tokens(text), read in windows of ctx input positions starting every
// stride positions (stride 0 means ctx). Window k reads ids[k·stride,
// k·stride+ctx) and scores only the targets no earlier window scored, so every
// token of the text is predicted exactly once: with stride = ctx the windows
// do not overlap and see no earlier context; with a smaller stride every token
// after the first window is predicted with at least ctx−stride positions of
// context (the usual sliding-window evaluation of a fixed-length model).
func perplexity(m *model.Model, dir string, tok *tokenizer.Tokenizer, text string, ctx, stride int) (PerplexityResult, error) {
	var r PerplexityResult
	if stride == 0 {
		stride = ctx
	}
	if ctx < 1 || stride < 1 || stride > ctx {
		return r, fmt.Errorf("--ctx %d --stride %d: need 1 ≤ stride ≤ ctx", ctx, stride)
	}
	content, err := tok.Encode(text)
	if err != nil {
		return r, err
	}
	ids := append([]int{m.Config.BOS}, content...)
	V := m.Config.VocabSize
	done := 0 // targets ids[1..done] are scored
	for s := 0; done < len(ids)-1; s += stride {
		hi := min(s+ctx, len(ids)-1)
		logits, err := runLogits(m, dir, ids[s:hi], 256)
		if err != nil {
			return r, err
		}
		for i := done; i < hi; i++ { // position i predicts ids[i+1]
			row := logits[(i-s)*V : (i-s+1)*V]
			mx := row[0]
			for _, v := range row {
				mx = max(mx, v)
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v - mx))
			}
			r.NLL += math.Log(z) + float64(mx) - float64(row[ids[i+1]])
			r.Tokens++
		}
		done = hi
	}
	r.Bytes = len(text)
	r.finish()
	return r, nil
}

// finish derives perplexity and bits per byte from the totals.
func (r *PerplexityResult) finish() {
	if r.Tokens > 0 {
		r.Perplexity = math.Exp(r.NLL / float64(r.Tokens))
	}
	if r.Bytes > 0 {
		r.BitsPerByte = r.NLL / math.Ln2 / float64(r.Bytes)
	}
}

// add accumulates another document's totals.
func (r *PerplexityResult) add(o PerplexityResult) {
	r.Tokens += o.Tokens
	r.Bytes += o.Bytes
	r.NLL += o.NLL
	r.finish()
}

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
