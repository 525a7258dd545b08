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
	ctx := fs.Int("ctx", 256, "positions per window (windows see no earlier context)")
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
		d, err := perplexity(m, mf.dir, tok, string(data), *ctx)
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
// BOS + tokens(text), cut into consecutive windows of ctx input positions
// (window k reads ids[k·ctx, (k+1)·ctx) and predicts the next id of each, with
// no context from the previous window), so every token of the text is
// predicted exactly once.
func perplexity(m *model.Model, dir string, tok *tokenizer.Tokenizer, text string, ctx int) (PerplexityResult, error) {
	var r PerplexityResult
	if ctx < 1 {
		return r, fmt.Errorf("--ctx %d: need at least 1", ctx)
	}
	content, err := tok.Encode(text)
	if err != nil {
		return r, err
	}
	ids := append([]int{m.Config.BOS}, content...)
	V := m.Config.VocabSize
	for s := 0; s+1 < len(ids); s += ctx {
		hi := min(s+ctx, len(ids)-1)
		logits, err := runLogits(m, dir, ids[s:hi], 256)
		if err != nil {
			return r, err
		}
		for i := s; i < hi; i++ {
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
