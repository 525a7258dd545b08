package tokenizer

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	stages      = flag.Bool("stages", false, "TestStageProfile: print the time of each encode stage on the corpus")
	stageRounds = flag.Int("stages.rounds", 7, "TestStageProfile: rounds per stage (the best is reported)")
)

// TestStageProfile times each stage of Encode alone on the corpus with DeepSeek-V3's tokenizer,
// best of several rounds, in ns per input byte. It is meant to be run natively and as a
// wasip1 test binary in wazero (see DESIGN.md, "WebAssembly cost model"):
//
//	go test ./wasm/tokenizer -run StageProfile -stages -v
//
// Stages are cumulative where they cannot run alone (a cache lookup needs the scanner's pieces),
// so a stage's own cost is the difference of two lines.
func TestStageProfile(t *testing.T) {
	if !*stages {
		t.Skip("-stages not set")
	}
	tk := loadV3(t)
	var texts []string
	total := 0
	for _, f := range corpusFiles(t) {
		d, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(d))
		total += len(d)
	}
	rounds := *stageRounds
	timeIt := func(name string, f func()) {
		best := time.Duration(1 << 62)
		for range rounds {
			t0 := time.Now()
			f()
			best = min(best, time.Since(t0))
		}
		fmt.Printf("%-36s %8.2f ms %7.2f ns/B\n", name, float64(best)/1e6, float64(best)/float64(total))
	}
	sink := 0

	timeIt("utf8.ValidString", func() {
		for _, s := range texts {
			if utf8.ValidString(s) {
				sink++
			}
		}
	})
	timeIt("added-token scan", func() {
		for _, s := range texts {
			tk.rawTrie.split(s, 0, len(s), func(a, b int) error {
				return tk.normTrie.split(s, a, b, func(a, b int) error { sink += b - a; return nil }, func(int32) {})
			}, func(int32) {})
		}
	})
	var ends [128]int
	timeIt("scanner", func() {
		for _, s := range texts {
			z := scanner{s: s}
			for {
				e := z.next(ends[:0])
				if len(e) == 0 {
					break
				}
				sink += len(e)
			}
		}
	})
	// All pieces, for the stages after the scanner.
	var pieces []string
	for _, s := range texts {
		preTokenize(s, func(a, b int) { pieces = append(pieces, s[a:b]) })
	}
	c := &tk.cache
	// Warm the cache, then count what a pass still merges.
	for _, s := range texts {
		tk.Encode(s)
	}
	var short, long, uncached, one int
	for _, p := range pieces {
		switch {
		case len(p) == 1:
			one++
		case len(p) > cacheMaxLen:
			uncached++
		default:
			if _, ok := c.get(p); !ok {
				if len(p) <= smallWord {
					short++
				} else {
					long++
				}
			}
		}
	}
	fmt.Printf("%d bytes, %d pieces (%.2f B/piece), %d one-byte; warm-cache misses: %d <=%dB, %d longer; %d longer than %d\n",
		total, len(pieces), float64(total)/float64(len(pieces)), one, short, smallWord, long, uncached, cacheMaxLen)
	out := make([]int, 0, total)
	timeIt("Encode (warm cache)", func() {
		for _, s := range texts {
			out, _ = tk.AppendEncode(out[:0], s)
		}
	})
	nids := 0
	for _, s := range texts {
		out, _ = tk.AppendEncode(out[:0], s)
		nids += len(out)
	}
	fmt.Printf("%d ids (%.2f B/id)\n", nids, float64(total)/float64(nids))

	// BPE alone on every piece of more than one byte, no cache.
	var sc mergeScratch
	var buf []int32
	bpe := func(keep func(p string) bool) func() {
		return func() {
			for _, p := range pieces {
				if len(p) < 2 || !keep(p) {
					continue
				}
				buf = buf[:0]
				for i := 0; i < len(p); i++ {
					buf = append(buf, tk.byteID[p[i]])
				}
				sink += len(tk.pairs.merge(buf, &sc))
			}
		}
	}
	timeIt("BPE all pieces <= 8 B, no cache", bpe(func(p string) bool { return len(p) <= smallWord }))
	timeIt("BPE all pieces > 8 B, no cache", bpe(func(p string) bool { return len(p) > smallWord }))
	// The pieces a warm pass still merges: simulate one, inserting misses as Encode does.
	var missed []string
	for _, p := range pieces {
		if len(p) > 1 {
			if _, ok := c.get(p); !ok {
				missed = append(missed, p)
				tk.Encode(p)
			}
		}
	}
	fmt.Printf("a warm pass merges %d pieces\n", len(missed))
	timeIt("BPE of warm-cache misses", func() {
		for _, p := range missed {
			buf = buf[:0]
			for i := 0; i < len(p); i++ {
				buf = append(buf, tk.byteID[p[i]])
			}
			sink += len(tk.pairs.merge(buf, &sc))
		}
	})
	tk.cache = newWordCache()
	timeIt("Encode (cold cache each round)", func() {
		tk.cache = newWordCache()
		for _, s := range texts {
			out, _ = tk.AppendEncode(out[:0], s)
		}
	})
	var all [][]int
	for _, s := range texts {
		ids, _ := tk.Encode(s)
		all = append(all, ids)
	}
	ids32 := make([]int32, 0, nids)
	timeIt("ids []int -> []int32 (edge's toInt32)", func() {
		for _, ids := range all {
			ids32 = ids32[:0]
			for _, id := range ids {
				ids32 = append(ids32, int32(id))
			}
		}
	})
	// Per file: the scanner and a warm Encode, and what a warm pass merges.
	files := corpusFiles(t)
	for i, s := range texts {
		var sc, enc time.Duration = 1 << 62, 1 << 62
		for range rounds {
			t0 := time.Now()
			z := scanner{s: s}
			for {
				e := z.next(ends[:0])
				if len(e) == 0 {
					break
				}
				sink += len(e)
			}
			t1 := time.Now()
			out, _ = tk.AppendEncode(out[:0], s)
			sc, enc = min(sc, t1.Sub(t0)), min(enc, time.Since(t1))
		}
		var np, nm, mb int
		preTokenize(s, func(a, b int) {
			np++
			if p := s[a:b]; len(p) > 1 {
				if _, ok := c.get(p); !ok {
					nm++
					mb += len(p)
					tk.Encode(p)
				}
			}
		})
		fmt.Printf("%-18s %7d B %6d pieces: scanner %6.1f ns/B, Encode %6.1f ns/B; warm misses %5d (%6d B)\n",
			filepath.Base(files[i]), len(s), np, float64(sc)/float64(len(s)), float64(enc)/float64(len(s)), nm, mb)
	}
	if sink == 42 {
		fmt.Println()
	}
}

// TestWordCacheKeys checks that cache hits return the ids of the right piece when keys share
// their first 16 bytes, their length, or differ only past the 16 bytes the lookup compares as
// words, both at the end of the text (key words read byte by byte) and inside it (loaded).
func TestWordCacheKeys(t *testing.T) {
	tk := loadTiny(t)
	tk.cache = newWordCache()
	// ref encodes without the cache: BPE on every piece.
	ref := func(s string) []int {
		var ids []int
		preTokenize(s, func(a, b int) {
			var w []int32
			for i := a; i < b; i++ {
				w = append(w, tk.byteID[s[i]])
			}
			for _, id := range tk.pairs.mergeWord(w) {
				ids = append(ids, int(id))
			}
		})
		return ids
	}
	base := "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
	var texts []string
	for n := 1; n <= len(base); n++ {
		w := base[:n]
		for _, v := range []string{w, " " + w, w[:n-1] + "Q", "é" + w} {
			texts = append(texts, v, v+". "+v+"!\n")
		}
	}
	for round := range 2 {
		for _, s := range texts {
			got, err := tk.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			if want := ref(s); !equalInts(got, want) {
				t.Fatalf("round %d, %q: got %v, want %v", round, s, got, want)
			}
		}
	}
}

// TestKeyWords checks keyWords and keyMask against the definition: the first 16 bytes of the key,
// little-endian, zero-padded.
func TestKeyWords(t *testing.T) {
	src := "0123456789abcdefghijklmnopqrstuvwxyz\xff\x80é日本"
	for a := 0; a < len(src); a++ {
		for b := a; b <= len(src); b++ {
			k := src[a:b]
			var want [2]uint64
			for i := 0; i < len(k) && i < 16; i++ {
				want[i/8] |= uint64(k[i]) << (8 * (i % 8))
			}
			if w0, w1 := keyWords(k); w0 != want[0] || w1 != want[1] {
				t.Fatalf("keyWords(%q) = %#x, %#x, want %#x", k, w0, w1, want)
			}
			if n := len(k); n <= 16 && a+16 <= len(src) {
				m := keyMask[n]
				if w0, w1 := load64(src, a)&m[0], load64(src, a+8)&m[1]; w0 != want[0] || w1 != want[1] {
					t.Fatalf("masked loads of %q = %#x, %#x, want %#x", k, w0, w1, want)
				}
			}
		}
	}
}

// TestAddedTrieSplit compares addedTrie.split with a naive leftmost-longest search, for token
// sets that share their first byte (the eight-byte skip) and that do not.
func TestAddedTrieSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, toks := range [][]string{
		{"<a>", "<ab>", "<", "<b"},
		{"<a>", "xy", "<ab>"},
		{"é", "<"},
	} {
		tr := newAddedTrie()
		for id, s := range toks {
			tr.add(s, id)
		}
		// want: leftmost position where a token starts, longest token there.
		ref := func(s string) []string {
			var out []string
			gap := 0
			for i := 0; i < len(s); {
				best := -1
				for id, tok := range toks {
					if strings.HasPrefix(s[i:], tok) && (best < 0 || len(tok) > len(toks[best])) {
						best = id
					}
				}
				if best < 0 {
					i++
					continue
				}
				if gap < i {
					out = append(out, s[gap:i])
				}
				out = append(out, fmt.Sprint("#", best))
				i += len(toks[best])
				gap = i
			}
			if gap < len(s) {
				out = append(out, s[gap:])
			}
			return out
		}
		alphabet := []string{"<", "a", "b", ">", "x", "y", "é", "z", "zzzzzzzz", "<a", "ab>"}
		for range 20000 {
			var b strings.Builder
			for range rng.IntN(24) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s := b.String()
			var got []string
			tr.split(s, 0, len(s), func(a, b int) error { got = append(got, s[a:b]); return nil },
				func(id int32) { got = append(got, fmt.Sprint("#", id)) })
			if want := ref(s); !slices.Equal(got, want) {
				t.Fatalf("tokens %q, text %q: got %q, want %q", toks, s, got, want)
			}
		}
	}
}
