package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/wasm/engram"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

// engramConfig is the addressing part of a V4.1 config.
func engramConfig(cfg checkpoint.Config) engram.Config {
	return engram.Config{LayerIDs: cfg.EngramLayers, MaxNgram: cfg.EngramMaxNgram, Heads: cfg.EngramHeads,
		VocabSize: cfg.EngramVocab, CompressedVocab: cfg.EngramCompressed, PadID: cfg.EngramPad}
}

// newEngramAddresser returns a function giving the V4.1 Engram rows of
// consecutive tokens of one sequence (the same addressing the edge module
// does), or nil for architectures without Engram. The canonical-id map comes
// from the checkpoint's tokenizer.json.
func newEngramAddresser(dir string, cfg checkpoint.Config) (func(toks []int) ([][][]int64, error), error) {
	if len(cfg.EngramLayers) == 0 {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("engram addressing needs the tokenizer: %w", err)
	}
	a, err := newAddresser(cfg, data)
	if err != nil {
		return nil, err
	}
	st := a.NewState()
	return func(toks []int) ([][][]int64, error) {
		out := make([][][]int64, len(toks))
		for i, t := range toks {
			if out[i], err = st.Push(t, false); err != nil {
				return nil, err
			}
		}
		return out, nil
	}, nil
}

// newAddresser builds the Engram addresser of a V4.1 config from the
// model's tokenizer.json, and checks that its table sizes match the config.
func newAddresser(cfg checkpoint.Config, tokJSON []byte) (*engram.Addresser, error) {
	tok, err := tokenizer.Load(tokJSON)
	if err != nil {
		return nil, err
	}
	canon, _, err := engram.CanonicalMap(tok)
	if err != nil {
		return nil, err
	}
	a, err := engram.NewAddresser(engramConfig(cfg), canon)
	if err != nil {
		return nil, err
	}
	for i := range cfg.EngramLayers {
		if got := a.TableRows(i); i >= len(cfg.EngramRows) || got != int64(cfg.EngramRows[i]) {
			return nil, fmt.Errorf("engram layer %d: hashing addresses %d rows, config says %v", cfg.EngramLayers[i], got, cfg.EngramRows)
		}
	}
	return a, nil
}
