package tokenizer

import (
	"os"
	"testing"
)

// BenchmarkEncode encodes every corpus file whole, like tools/tokenizer/bench_hf.py does with HF
// tokenizers, so the MB/s figures compare directly.
func BenchmarkEncode(b *testing.B) {
	var texts []string
	total := 0
	for _, f := range corpusFiles(b) {
		d, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		texts = append(texts, string(d))
		total += len(d)
	}
	for _, c := range []struct {
		name string
		load func(testing.TB) *Tokenizer
	}{{"deepseek_v3", loadV3}, {"tiny", loadTiny}} {
		b.Run(c.name, func(b *testing.B) {
			tk := c.load(b)
			ids := make([]int, 0, 1<<20)
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				for _, s := range texts {
					var err error
					if ids, err = tk.AppendEncode(ids[:0], s); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkLoad measures parsing DeepSeek-V3's 7.5 MB tokenizer.json.
func BenchmarkLoad(b *testing.B) {
	data, err := v3Bytes(repoRoot(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Load(data); err != nil {
			b.Fatal(err)
		}
	}
}
