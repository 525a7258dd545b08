package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// BuildByteLevel trains a small byte-level BPE on corpus and returns it as a Hugging Face
// tokenizer.json with DeepSeek's pre-tokenizer and decoder, loadable here and by HF tokenizers.
//
// The model vocabulary has vocabSize entries: the 256 byte tokens (ids 0-255 in byte order) and
// then one token per merge, learned greedily (most frequent adjacent pair over the pre-tokenized
// corpus; ties go to the lexicographically smallest pair). Training stops early if the corpus
// runs out of pairs. specials follow as special added tokens with the next ids, in order, so
// VocabSize is the model size plus len(specials). Occurrences of specials in corpus are cut out
// before training, as encoding would.
func BuildByteLevel(vocabSize int, corpus []byte, specials []string) ([]byte, error) {
	if vocabSize < 256 {
		return nil, fmt.Errorf("tokenizer: BuildByteLevel: vocabSize %d < 256", vocabSize)
	}
	if vocabSize > 1<<20 {
		return nil, fmt.Errorf("tokenizer: BuildByteLevel: vocabSize %d too large", vocabSize)
	}
	if !utf8.Valid(corpus) {
		return nil, errors.New("tokenizer: BuildByteLevel: corpus is not valid UTF-8")
	}
	trie := newAddedTrie()
	seen := map[string]bool{}
	for i, s := range specials {
		if s == "" || !utf8.ValidString(s) || seen[s] {
			return nil, fmt.Errorf("tokenizer: BuildByteLevel: specials[%d] %q is empty, invalid or repeated", i, s)
		}
		seen[s] = true
		trie.add(s, i)
	}

	// Count distinct pre-tokens: merges never cross pre-token boundaries.
	text := string(corpus)
	freq := map[string]int{}
	_ = trie.split(text, 0, len(text), func(a, b int) error {
		preTokenize(text[a:b], func(x, y int) { freq[text[a+x:a+y]]++ })
		return nil
	}, func(int32) {})

	tokens := make([]string, 256) // byte-level strings, index = id
	index := make(map[string]int32, vocabSize)
	for b := range 256 {
		tokens[b] = string(byteToRune[b])
		index[tokens[b]] = int32(b)
	}
	type word struct {
		syms []int32
		n    int
	}
	words := make([]word, 0, len(freq))
	for _, w := range sortedKeys(freq) {
		syms := make([]int32, len(w))
		for i := 0; i < len(w); i++ {
			syms[i] = int32(w[i])
		}
		words = append(words, word{syms, freq[w]})
	}
	counts := map[uint64]int{}
	where := map[uint64][]int32{} // words that contain (or once contained) a pair
	addPairs := func(wi int32, sign int) {
		w := &words[wi]
		for i := 0; i+1 < len(w.syms); i++ {
			k := pairKey(w.syms[i], w.syms[i+1])
			counts[k] += sign * w.n
			if sign > 0 {
				if l := where[k]; len(l) == 0 || l[len(l)-1] != wi {
					where[k] = append(l, wi)
				}
			}
		}
	}
	for wi := range words {
		addPairs(int32(wi), 1)
	}

	var merges [][2]string
	stamp := make([]int, len(words))
	for round := 1; len(tokens) < vocabSize; round++ {
		var best uint64
		bestN := 0
		for k, n := range counts {
			if n <= 0 {
				continue
			}
			if n > bestN || n == bestN && pairLess(tokens, k, best) {
				best, bestN = k, n
			}
		}
		if bestN == 0 {
			break
		}
		a, b := int32(best>>32), int32(uint32(best))
		merged := tokens[a] + tokens[b]
		id, ok := index[merged]
		if !ok {
			id = int32(len(tokens))
			tokens = append(tokens, merged)
			index[merged] = id
		}
		merges = append(merges, [2]string{tokens[a], tokens[b]})
		for _, wi := range where[best] {
			if stamp[wi] == round {
				continue
			}
			stamp[wi] = round
			addPairs(wi, -1)
			w := &words[wi]
			out := w.syms[:0]
			for i := 0; i < len(w.syms); i++ {
				if i+1 < len(w.syms) && w.syms[i] == a && w.syms[i+1] == b {
					out = append(out, id)
					i++
				} else {
					out = append(out, w.syms[i])
				}
			}
			w.syms = out
			addPairs(wi, 1)
		}
		delete(where, best)
		delete(counts, best)
	}

	for i, s := range specials {
		if _, clash := index[s]; clash {
			return nil, fmt.Errorf("tokenizer: BuildByteLevel: specials[%d] %q is also a learned token", i, s)
		}
	}
	return writeJSON(tokens, merges, specials)
}

func pairLess(tokens []string, x, y uint64) bool {
	xa, xb := tokens[int32(x>>32)], tokens[int32(uint32(x))]
	ya, yb := tokens[int32(y>>32)], tokens[int32(uint32(y))]
	if xa != ya {
		return xa < ya
	}
	return xb < yb
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonString encodes s without HTML escaping, so the file stays readable ("<think>").
func jsonString(buf *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}

// writeJSON lays the file out like HF's own serialization (vocab in id order, one merge per line)
// so that diffs of generated files stay small.
func writeJSON(tokens []string, merges [][2]string, specials []string) ([]byte, error) {
	var w bytes.Buffer
	w.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, s := range specials {
		if i > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(&w, "\n    {\"id\": %d, \"content\": ", len(tokens)+i)
		jsonString(&w, s)
		w.WriteString(", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}")
	}
	w.WriteString("\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [")
	for _, p := range []string{patDigits, patCJK, patMain} {
		w.WriteString("\n    {\"type\": \"Split\", \"pattern\": {\"Regex\": ")
		jsonString(&w, p)
		w.WriteString("}, \"behavior\": \"Isolated\", \"invert\": false},")
	}
	w.WriteString("\n    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}\n  ]},\n")
	w.WriteString("  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true},\n")
	w.WriteString("  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n")
	w.WriteString("  \"model\": {\n    \"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null,\n")
	w.WriteString("    \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,\n    \"vocab\": {")
	for id, s := range tokens {
		if id > 0 {
			w.WriteByte(',')
		}
		w.WriteString("\n      ")
		jsonString(&w, s)
		fmt.Fprintf(&w, ": %d", id)
	}
	w.WriteString("\n    },\n    \"merges\": [")
	for i, m := range merges {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString("\n      [")
		jsonString(&w, m[0])
		w.WriteString(", ")
		jsonString(&w, m[1])
		w.WriteByte(']')
	}
	w.WriteString("\n    ]\n  }\n}\n")
	return w.Bytes(), nil
}
