package model_test

import (
	"testing"

	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// BenchmarkPrefillTinyV4 measures one-shot prefill of 256 tokens on the tiny V4 checkpoint.
func BenchmarkPrefillTinyV4(b *testing.B) {
	m := tinyModel(b, checkpoint.ArchV4, model.ReferenceNumerics, 2)
	toks := randomTokens(256, 512, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		forwardChunks(b, m, toks, 256)
	}
}
