// Package nativeedge is a native Go implementation of engine.Edge: a
// byte-level tokenizer (one token per byte, for tests and tiny random
// models) and the wasm/sampler sampler run natively. It stands in for the
// wazero-hosted edge module until that lands, and keeps serving tests.
package nativeedge

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/wasm/sampler"
)

// Bytes is a byte-level edge: byte b is token Offset+b; ids past the byte
// range wrap around (id-Offset) mod 256, so every id of a random model
// decodes to some byte. Ids below Offset are special (BOS, EOS) and decode
// to nothing.
type Bytes struct {
	Offset int // first byte token
	BOS    int
}

// NewBytes returns a byte-level edge for a model whose special tokens are
// bos and eos: byte tokens start right after the larger of the two.
func NewBytes(bos, eos int) *Bytes {
	return &Bytes{Offset: max(bos, eos) + 1, BOS: bos}
}

// Encode implements engine.Edge.
func (b *Bytes) Encode(text string) ([]int, error) {
	out := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		out[i] = b.Offset + int(text[i])
	}
	return out, nil
}

// EncodeChat implements engine.Edge with a plain "role: content" template.
func (b *Bytes) EncodeChat(msgs []engine.Message, opt engine.ChatOptions) ([]int, error) {
	var sb strings.Builder
	for _, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant", "developer", "tool":
		default:
			return nil, fmt.Errorf("nativeedge: unknown chat role %q", m.Role)
		}
		fmt.Fprintf(&sb, "%s: %s\n", m.Role, m.Content)
	}
	sb.WriteString("assistant: ")
	if opt.Thinking {
		sb.WriteString("<think>")
	}
	toks, _ := b.Encode(sb.String())
	return append([]int{b.BOS}, toks...), nil
}

func (b *Bytes) byteOf(id int) (byte, bool) {
	if id < b.Offset {
		return 0, false
	}
	return byte((id - b.Offset) % 256), true
}

// TokenText implements engine.Edge.
func (b *Bytes) TokenText(id int) string {
	c, ok := b.byteOf(id)
	if !ok {
		return ""
	}
	return string([]byte{c})
}

// NewDetok implements engine.Edge.
func (b *Bytes) NewDetok() engine.Detok { return &detok{e: b} }

type detok struct {
	e   *Bytes
	buf []byte
}

// Push adds one token's byte and returns every complete character; an
// incomplete trailing UTF-8 sequence is held back.
func (d *detok) Push(id int) (string, error) {
	c, ok := d.e.byteOf(id)
	if !ok {
		return "", nil
	}
	d.buf = append(d.buf, c)
	cut := completePrefix(d.buf)
	out := strings.ToValidUTF8(string(d.buf[:cut]), "\uFFFD")
	d.buf = append(d.buf[:0], d.buf[cut:]...)
	return out, nil
}

// Flush returns held bytes, an incomplete character becoming U+FFFD.
func (d *detok) Flush() string {
	out := strings.ToValidUTF8(string(d.buf), "\uFFFD")
	d.buf = d.buf[:0]
	return out
}

// completePrefix is the length of b without a trailing incomplete (but
// possibly still valid) UTF-8 sequence.
func completePrefix(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		start := len(b) - k
		if utf8.RuneStart(b[start]) {
			if !utf8.FullRune(b[start:]) && couldBeValid(b[start:]) {
				return start
			}
			return len(b)
		}
	}
	return len(b)
}

// couldBeValid reports whether p is the start of some valid encoding.
func couldBeValid(p []byte) bool {
	for _, tail := range [][]byte{{0x80, 0x80, 0x80}, {0xA0, 0x80, 0x80}, {0x90, 0x80, 0x80}, {0x9F, 0xBF, 0xBF}, {0x8F, 0xBF, 0xBF}} {
		full := append(append([]byte(nil), p...), tail...)
		if r, n := utf8.DecodeRune(full); r != utf8.RuneError && n > len(p) {
			return true
		}
	}
	return false
}

// NewSampler implements engine.Edge with the wasm/sampler package.
func (b *Bytes) NewSampler(p engine.SamplerParams) (engine.Sampler, error) {
	return NewSampler(p)
}

// NewSampler returns the native wasm/sampler sampler for p.
func NewSampler(p engine.SamplerParams) (engine.Sampler, error) {
	s, err := sampler.New(sampler.Params{
		Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
		RepetitionPenalty: p.RepetitionPenalty, PresencePenalty: p.PresencePenalty, FrequencyPenalty: p.FrequencyPenalty,
		LogitBias: p.LogitBias, Seed: p.Seed, LogProbs: p.LogProbs, TopLogProbs: p.TopLogProbs,
	})
	if err != nil {
		return nil, err
	}
	return nativeSampler{s}, nil
}

type nativeSampler struct{ s *sampler.Sampler }

// Sample implements engine.Sampler.
func (n nativeSampler) Sample(logits []float32, history []int) (engine.Choice, error) {
	c, err := n.s.Sample(logits, history)
	if err != nil {
		return engine.Choice{}, err
	}
	out := engine.Choice{ID: c.ID, LogProb: c.LogProb}
	for _, a := range c.Top {
		out.Top = append(out.Top, engine.Alt{ID: a.ID, LogProb: a.LogProb})
	}
	return out, nil
}
