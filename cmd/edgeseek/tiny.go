package main

import (
	_ "embed"
	"fmt"

	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/wasm/engram"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

// tinyCorpus trains the tokenizer of tiny test checkpoints: Go's
// strings/strings.go (BSD licence, from the Go distribution) and a few
// sentences in other scripts.
//
//go:embed tinycorpus.txt
var tinyCorpus []byte

// tinySpecials are the DeepSeek special tokens a tiny tokenizer carries.
var tinySpecials = []string{
	"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
	"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>",
}

// tinyTokenizer builds a byte-level BPE tokenizer.json whose ids fit in the
// model vocabulary, and points the config's BOS/EOS at its special tokens.
func tinyTokenizer(cfg *checkpoint.Config) ([]byte, error) {
	js, err := tokenizer.BuildByteLevel(cfg.VocabSize-len(tinySpecials), tinyCorpus, tinySpecials)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(js)
	if err != nil {
		return nil, fmt.Errorf("tiny tokenizer: %w", err)
	}
	if tok.IDLimit() > cfg.VocabSize {
		return nil, fmt.Errorf("tiny tokenizer has %d ids for a vocabulary of %d", tok.IDLimit(), cfg.VocabSize)
	}
	bos, _ := tok.TokenToID(tinySpecials[0])
	eos, _ := tok.TokenToID(tinySpecials[1])
	cfg.BOS, cfg.EOS = bos, eos
	if len(cfg.EngramLayers) > 0 {
		// The Engram hash multipliers depend on the number of canonical ids.
		if _, cfg.EngramCompressed, err = engram.CanonicalMap(tok); err != nil {
			return nil, err
		}
	}
	return js, nil
}
