package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

type chunkRecord struct {
	File string `json:"f"`
	Off  int    `json:"o"`
	Len  int    `json:"n"`
	IDs  []int  `json:"ids"`
	Dec  string `json:"d"`
	Skip string `json:"s"`
}

type decodeRecord struct {
	IDs  []int  `json:"ids"`
	Dec  string `json:"d"`
	Skip string `json:"s"`
}

func h16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

// firstDiff describes where two id sequences part, with the pieces of text around it.
func firstDiff(tk *Tokenizer, got, want []int) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-3)
	show := func(ids []int) string {
		var b strings.Builder
		for _, id := range ids[lo:min(len(ids), i+4)] {
			s, _ := tk.Decode([]int{id}, false)
			fmt.Fprintf(&b, "%d%q ", id, s)
		}
		return b.String()
	}
	return fmt.Sprintf("first difference at id #%d (got %d ids, want %d)\n  got:  %s\n  want: %s", i, len(got), len(want), show(got), show(want))
}

func checkEncodeParity(t *testing.T, name string, tk *Tokenizer) {
	files := map[string][]byte{}
	lines := readJSONLGz(t, "expected_"+name+".jsonl.gz")
	if len(lines) < 100 {
		t.Fatalf("only %d expected chunks", len(lines))
	}
	var bytesChecked int
	for n, line := range lines {
		var r chunkRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		data, ok := files[r.File]
		if !ok {
			var err error
			if data, err = os.ReadFile(filepath.Join(testdata(t, "corpus"), r.File)); err != nil {
				t.Fatal(err)
			}
			files[r.File] = data
		}
		text := string(data[r.Off : r.Off+r.Len])
		got, err := tk.Encode(text)
		if err != nil {
			t.Fatalf("%s@%d: %v", r.File, r.Off, err)
		}
		if !equalInts(got, r.IDs) {
			t.Fatalf("%s: encode of %s bytes %d..%d differs from HF: %s", name, r.File, r.Off, r.Off+r.Len, firstDiff(tk, got, r.IDs))
		}
		for _, skip := range []bool{false, true} {
			dec, err := tk.Decode(r.IDs, skip)
			if err != nil {
				t.Fatal(err)
			}
			want := r.Dec
			if skip {
				want = r.Skip
			}
			if h16(dec) != want {
				t.Fatalf("%s: decode(skip=%v) of %s@%d differs from HF (sha %s, want %s); text %.200q", name, skip, r.File, r.Off, h16(dec), want, dec)
			}
		}
		bytesChecked += r.Len
	}
	t.Logf("%s: %d chunks, %d bytes identical to HF", name, len(lines), bytesChecked)
}

func checkDecodeParity(t *testing.T, name string, tk *Tokenizer) {
	for n, line := range readJSONLGz(t, "decode_"+name+".jsonl.gz") {
		var r decodeRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		for _, skip := range []bool{false, true} {
			got, err := tk.Decode(r.IDs, skip)
			want := r.Dec
			if skip {
				want = r.Skip
			}
			if err != nil || got != want {
				t.Fatalf("%s: Decode(%v, %v) = %q, %v; HF %q", name, r.IDs, skip, got, err, want)
			}
			st := NewStream(tk)
			st.SkipSpecial(skip)
			var b strings.Builder
			for _, id := range r.IDs {
				s, err := st.Push(id)
				if err != nil {
					t.Fatal(err)
				}
				if strings.ContainsRune(s, unicode.ReplacementChar) && !strings.Contains(want, "\uFFFD") {
					t.Fatalf("stream emitted U+FFFD for %v", r.IDs)
				}
				b.WriteString(s)
			}
			b.WriteString(st.Flush())
			if b.String() != want {
				t.Fatalf("%s: stream of %v (skip %v) = %q; HF decode %q", name, r.IDs, skip, b.String(), want)
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type metaRecord struct {
	VocabSize int            `json:"vocab_size_with_added"`
	Model     int            `json:"vocab_size_model"`
	MaxID     int            `json:"max_id_plus_1"`
	Specials  map[string]int `json:"specials"`
}

func checkMeta(t *testing.T, name string, tk *Tokenizer) {
	b, err := os.ReadFile(testdata(t, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]metaRecord
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	r := m[name]
	if tk.VocabSize() != r.VocabSize || tk.IDLimit() != r.MaxID {
		t.Errorf("%s: VocabSize %d IDLimit %d; HF %d, %d", name, tk.VocabSize(), tk.IDLimit(), r.VocabSize, r.MaxID)
	}
	for s, id := range r.Specials {
		if got, ok := tk.SpecialID(s); !ok || got != id {
			t.Errorf("%s: SpecialID(%q) = %d, %v; HF %d", name, s, got, ok, id)
		}
	}
}

func TestParityTiny(t *testing.T) {
	tk := loadTiny(t)
	checkMeta(t, "tiny", tk)
	checkEncodeParity(t, "tiny", tk)
	checkDecodeParity(t, "tiny", tk)
}

func TestParityDeepSeekV3(t *testing.T) {
	tk := loadV3(t)
	checkMeta(t, "deepseek_v3", tk)
	checkEncodeParity(t, "deepseek_v3", tk)
	checkDecodeParity(t, "deepseek_v3", tk)
	if id, ok := tk.BOS(); !ok || id != 0 {
		t.Errorf("BOS = %d, %v", id, ok)
	}
	if id, ok := tk.EOS(); !ok || id != 1 {
		t.Errorf("EOS = %d, %v", id, ok)
	}
}
