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
	text := fs.String("text", "", "UTF-8 text file to score")
	ctx := fs.Int("ctx", 512, "tokens per independent window (each starts with BOS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *text == "" {
		return fmt.Errorf("--text is required")
	}
	data, err := os.ReadFile(*text)
	if err != nil {
		return err
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
	r, err := perplexity(m, mf.dir, tok, string(data), *ctx)
	if err != nil {
		return err
	}
	fmt.Printf("tokens %d  bytes %d  perplexity %.4f  bits/byte %.4f  (%.1f tokens/s)\n",
		r.Tokens, r.Bytes, r.Perplexity, r.BitsPerByte, float64(r.Tokens)/time.Since(start).Seconds())
	return nil
}

// perplexity scores text in independent windows of at most ctx tokens, each
// preceded by BOS; every token of the text is predicted exactly once.
func perplexity(m *model.Model, dir string, tok *tokenizer.Tokenizer, text string, ctx int) (PerplexityResult, error) {
	var r PerplexityResult
	if ctx < 2 {
		return r, fmt.Errorf("--ctx %d: need at least 2", ctx)
	}
	ids, err := tok.Encode(text)
	if err != nil {
		return r, err
	}
	bos := m.Config.BOS
	V := m.Config.VocabSize
	for lo := 0; lo < len(ids); lo += ctx - 1 {
		hi := min(lo+ctx-1, len(ids))
		seq := append([]int{bos}, ids[lo:hi]...)
		logits, err := runLogits(m, dir, seq, 256)
		if err != nil {
			return r, err
		}
		for i := 0; i+1 < len(seq); i++ {
			row := logits[i*V : (i+1)*V]
			mx := row[0]
			for _, v := range row {
				mx = max(mx, v)
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v - mx))
			}
			r.NLL += math.Log(z) + float64(mx) - float64(row[seq[i+1]])
			r.Tokens++
		}
	}
	r.Bytes = len(text)
	if r.Tokens > 0 {
		r.Perplexity = math.Exp(r.NLL / float64(r.Tokens))
	}
	if r.Bytes > 0 {
		r.BitsPerByte = r.NLL / math.Ln2 / float64(r.Bytes)
	}
	return r, nil
}
