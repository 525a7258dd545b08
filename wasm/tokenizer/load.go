package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The JSON layout of a Hugging Face tokenizer.json, limited to what byte-level BPE uses. Fields
// that change tokenization are decoded as raw JSON so that each unsupported value is named in the
// error instead of being ignored.
type fileJSON struct {
	Version       json.RawMessage `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []addedJSON     `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
}

type addedJSON struct {
	ID         *int    `json:"id"`
	Content    *string `json:"content"`
	SingleWord bool    `json:"single_word"`
	LStrip     bool    `json:"lstrip"`
	RStrip     bool    `json:"rstrip"`
	Normalized bool    `json:"normalized"`
	Special    bool    `json:"special"`
}

type modelJSON struct {
	Type                    string   `json:"type"`
	Dropout                 *float64 `json:"dropout"`
	UnkToken                *string  `json:"unk_token"`
	ContinuingSubwordPrefix *string  `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string  `json:"end_of_word_suffix"`
	FuseUnk                 bool     `json:"fuse_unk"`
	ByteFallback            bool     `json:"byte_fallback"`
	IgnoreMerges            bool     `json:"ignore_merges"`
	Vocab                   map[string]int
}

type componentJSON struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Pattern        map[string]string `json:"pattern"`
	Behavior       string            `json:"behavior"`
	Invert         bool              `json:"invert"`
	AddPrefixSpace bool              `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
}

// maxIDs bounds the id space so that a malformed file cannot make Load allocate gigabytes.
const maxIDs = 1 << 22

func isNull(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || string(m) == "null"
}

// strictKeys rejects keys of a JSON object outside allowed, so that options this package does not
// implement are reported rather than ignored.
func strictKeys(where string, raw json.RawMessage, allowed ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("tokenizer: %s: %v", where, err)
	}
	for k := range m {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("tokenizer: %s.%s: unsupported field", where, k)
		}
	}
	return nil
}

// Load parses a Hugging Face tokenizer.json for byte-level BPE with DeepSeek's pre-tokenizer.
// Anything it cannot reproduce exactly is an error naming the field.
func Load(data []byte) (*Tokenizer, error) {
	sc := &jsonScan{b: data}
	top, err := sc.rawObject()
	if err == nil {
		err = sc.end()
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %v", err)
	}
	var f fileJSON
	fields := map[string]any{"version": &f.Version, "truncation": &f.Truncation, "padding": &f.Padding,
		"added_tokens": &f.AddedTokens, "normalizer": &f.Normalizer, "pre_tokenizer": &f.PreTokenizer,
		"post_processor": &f.PostProcessor, "decoder": &f.Decoder}
	for k, v := range top {
		if k == "model" {
			continue
		}
		dst, ok := fields[k]
		if !ok {
			return nil, fmt.Errorf("tokenizer: tokenizer.json.%s: unsupported field", k)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %v", k, err)
		}
	}
	if !isNull(f.Truncation) {
		return nil, errors.New("tokenizer: truncation: only null is supported")
	}
	if !isNull(f.Padding) {
		return nil, errors.New("tokenizer: padding: only null is supported")
	}
	if err := checkNormalizer("normalizer", f.Normalizer); err != nil {
		return nil, err
	}
	if err := checkPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := checkPostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	t := &Tokenizer{unkID: -1, bos: -1, eos: -1}
	if err := t.loadModel(top["model"]); err != nil {
		return nil, err
	}
	if err := t.loadAdded(f.AddedTokens); err != nil {
		return nil, err
	}
	t.finish()
	return t, nil
}

func checkNormalizer(where string, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("tokenizer: %s: %v", where, err)
	}
	if c.Type != "Sequence" {
		return fmt.Errorf("tokenizer: %s: type %q is not supported (only null or an empty Sequence)", where, c.Type)
	}
	for i, n := range c.Normalizers {
		if err := checkNormalizer(fmt.Sprintf("%s.normalizers[%d]", where, i), n); err != nil {
			return err
		}
	}
	return nil
}

func checkPreTokenizer(raw json.RawMessage) error {
	const where = "pre_tokenizer"
	if isNull(raw) {
		return errors.New("tokenizer: pre_tokenizer: null is not supported (DeepSeek's Sequence is required)")
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("tokenizer: %s: %v", where, err)
	}
	if c.Type != "Sequence" {
		return fmt.Errorf("tokenizer: %s: type %q is not supported (DeepSeek's Sequence is required)", where, c.Type)
	}
	want := []string{patDigits, patCJK, patMain}
	if len(c.Pretokenizers) != len(want)+1 {
		return fmt.Errorf("tokenizer: %s.pretokenizers: %d entries, want DeepSeek's 3 Splits and ByteLevel", where, len(c.Pretokenizers))
	}
	for i, p := range want {
		w := fmt.Sprintf("%s.pretokenizers[%d]", where, i)
		if err := strictKeys(w, c.Pretokenizers[i], "type", "pattern", "behavior", "invert"); err != nil {
			return err
		}
		var s componentJSON
		if err := json.Unmarshal(c.Pretokenizers[i], &s); err != nil {
			return fmt.Errorf("tokenizer: %s: %v", w, err)
		}
		if s.Type != "Split" {
			return fmt.Errorf("tokenizer: %s: type %q, want Split", w, s.Type)
		}
		if len(s.Pattern) != 1 || s.Pattern["Regex"] != p {
			return fmt.Errorf("tokenizer: %s.pattern: %v is not supported, want Regex %q", w, s.Pattern, p)
		}
		if s.Behavior != "Isolated" {
			return fmt.Errorf("tokenizer: %s.behavior: %q is not supported, want Isolated", w, s.Behavior)
		}
		if s.Invert {
			return fmt.Errorf("tokenizer: %s.invert: true is not supported", w)
		}
	}
	w := fmt.Sprintf("%s.pretokenizers[3]", where)
	if err := strictKeys(w, c.Pretokenizers[3], "type", "add_prefix_space", "trim_offsets", "use_regex"); err != nil {
		return err
	}
	var bl componentJSON
	if err := json.Unmarshal(c.Pretokenizers[3], &bl); err != nil {
		return fmt.Errorf("tokenizer: %s: %v", w, err)
	}
	if bl.Type != "ByteLevel" {
		return fmt.Errorf("tokenizer: %s: type %q, want ByteLevel", w, bl.Type)
	}
	if bl.AddPrefixSpace {
		return fmt.Errorf("tokenizer: %s.add_prefix_space: true is not supported", w)
	}
	if bl.UseRegex == nil || *bl.UseRegex {
		return fmt.Errorf("tokenizer: %s.use_regex: must be false", w)
	}
	return nil
}

func checkPostProcessor(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("tokenizer: post_processor: %v", err)
	}
	// Encode is HF encode(add_special_tokens=False): these processors then add nothing and
	// change no id (ByteLevel only trims offsets).
	switch c.Type {
	case "ByteLevel", "TemplateProcessing":
		return nil
	}
	return fmt.Errorf("tokenizer: post_processor: type %q is not supported", c.Type)
}

func checkDecoder(raw json.RawMessage) error {
	if isNull(raw) {
		return errors.New("tokenizer: decoder: null is not supported (ByteLevel is required)")
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("tokenizer: decoder: %v", err)
	}
	if c.Type != "ByteLevel" {
		return fmt.Errorf("tokenizer: decoder: type %q is not supported (ByteLevel is required)", c.Type)
	}
	return nil
}

func (t *Tokenizer) loadModel(raw []byte) error {
	if isNull(raw) {
		return errors.New("tokenizer: model: missing")
	}
	var m modelJSON
	var merges [][2]string
	fields := map[string]any{"type": &m.Type, "dropout": &m.Dropout, "unk_token": &m.UnkToken,
		"continuing_subword_prefix": &m.ContinuingSubwordPrefix, "end_of_word_suffix": &m.EndOfWordSuffix,
		"fuse_unk": &m.FuseUnk, "byte_fallback": &m.ByteFallback, "ignore_merges": &m.IgnoreMerges}
	sc := &jsonScan{b: raw}
	err := sc.object(func(k string) error {
		switch k {
		case "vocab":
			v, err := parseVocab(sc, len(raw))
			if err != nil {
				return fmt.Errorf("tokenizer: model.vocab: %v", err)
			}
			m.Vocab = v
			return nil
		case "merges":
			v, err := parseMerges(sc)
			merges = v
			return err
		}
		dst, ok := fields[k]
		if !ok {
			return fmt.Errorf("tokenizer: model.%s: unsupported field", k)
		}
		v, err := sc.skip(0)
		if err == nil {
			err = json.Unmarshal(v, dst)
		}
		if err != nil {
			return fmt.Errorf("tokenizer: model.%s: %v", k, err)
		}
		return nil
	})
	if err == nil {
		err = sc.end()
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "tokenizer: ") {
			return err
		}
		return fmt.Errorf("tokenizer: model: %v", err)
	}
	if m.Type != "BPE" {
		return fmt.Errorf("tokenizer: model.type: %q is not supported (BPE is required)", m.Type)
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return errors.New("tokenizer: model.dropout: only null is supported")
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return errors.New("tokenizer: model.continuing_subword_prefix: only null is supported")
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return errors.New("tokenizer: model.end_of_word_suffix: only null is supported")
	}
	if m.ByteFallback {
		return errors.New("tokenizer: model.byte_fallback: true is not supported")
	}
	if len(m.Vocab) == 0 {
		return errors.New("tokenizer: model.vocab: missing or empty")
	}
	t.ignoreMerges = m.IgnoreMerges
	t.fuseUnk = m.FuseUnk
	t.vocab = m.Vocab
	t.modelSize = len(m.Vocab)
	limit := 2*len(m.Vocab) + 65536
	for s, id := range m.Vocab {
		if id < 0 || id >= maxIDs || id >= limit {
			return fmt.Errorf("tokenizer: model.vocab[%q]: id %d out of range", s, id)
		}
		t.growIDs(id)
		if t.used[id] {
			return fmt.Errorf("tokenizer: model.vocab: id %d used by %q and %q", id, t.idTok[id], s)
		}
		t.idTok[id], t.used[id] = s, true
	}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return fmt.Errorf("tokenizer: model.unk_token: %q is not in the vocabulary", *m.UnkToken)
		}
		t.unkID = int32(id)
	}
	t.pairs = newPairTable(len(merges))
	var cat []byte
	for rank, mg := range merges {
		a, ok := m.Vocab[mg[0]]
		if !ok {
			return fmt.Errorf("tokenizer: model.merges[%d]: token %q is not in the vocabulary", rank, mg[0])
		}
		b, ok := m.Vocab[mg[1]]
		if !ok {
			return fmt.Errorf("tokenizer: model.merges[%d]: token %q is not in the vocabulary", rank, mg[1])
		}
		cat = append(append(cat[:0], mg[0]...), mg[1]...)
		c, ok := m.Vocab[string(cat)]
		if !ok {
			return fmt.Errorf("tokenizer: model.merges[%d]: merged token %q is not in the vocabulary", rank, mg[0]+mg[1])
		}
		t.pairs.put(int32(a), int32(b), int32(rank), int32(c))
	}
	return nil
}

// parseVocab reads the {"token": id, ...} object.
// The map is presized from the size of the model's JSON (about 60 bytes per entry in DeepSeek's
// file, counting the merges), since growing a 128k-entry map costs more than the parsing.
func parseVocab(sc *jsonScan, modelBytes int) (map[string]int, error) {
	v := make(map[string]int, min(modelBytes/64, maxIDs/4))
	if sc.peek() == 'n' {
		_, err := sc.skip(0)
		return v, err
	}
	err := sc.object(func(k string) error {
		id, err := sc.integer()
		v[k] = id
		return err
	})
	return v, err
}

// parseMerges accepts both forms HF writes: "a b" strings (older files) and [a, b] arrays.
func parseMerges(sc *jsonScan) ([][2]string, error) {
	var out [][2]string
	if sc.peek() == 'n' {
		_, err := sc.skip(0)
		return nil, err
	}
	err := sc.array(func(i int) error {
		if sc.peek() == '"' {
			s, err := sc.str()
			if err != nil {
				return err
			}
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return fmt.Errorf("tokenizer: model.merges[%d]: %q is not two tokens separated by one space", i, s)
			}
			out = append(out, [2]string{a, b})
			return nil
		}
		var pair []string
		err := sc.array(func(j int) error {
			s, err := sc.str()
			pair = append(pair, s)
			return err
		})
		if err != nil {
			return err
		}
		if len(pair) != 2 {
			return fmt.Errorf("tokenizer: model.merges[%d]: %d elements, want 2", i, len(pair))
		}
		out = append(out, [2]string{pair[0], pair[1]})
		return nil
	})
	if err != nil && !strings.HasPrefix(err.Error(), "tokenizer: ") {
		err = fmt.Errorf("tokenizer: model.merges: %v", err)
	}
	return out, err
}

// growIDs makes id a valid index of the id tables.
func (t *Tokenizer) growIDs(id int) {
	if id < len(t.idTok) {
		return
	}
	if id < cap(t.idTok) {
		t.idTok, t.used = t.idTok[:id+1], t.used[:id+1]
		return
	}
	n := min(max(id+1, 2*cap(t.idTok)), maxIDs)
	grown := make([]string, id+1, n)
	copy(grown, t.idTok)
	used := make([]bool, id+1, n)
	copy(used, t.used)
	t.idTok, t.used = grown, used
}

func (t *Tokenizer) loadAdded(list []addedJSON) error {
	t.added = make(map[string]int, len(list))
	t.special = make(map[string]bool)
	t.rawTrie = newAddedTrie()
	t.normTrie = newAddedTrie()
	limit := 2*(t.modelSize+len(list)) + 65536
	for i, a := range list {
		w := fmt.Sprintf("added_tokens[%d]", i)
		if a.ID == nil || a.Content == nil {
			return fmt.Errorf("tokenizer: %s: id and content are required", w)
		}
		id, s := *a.ID, *a.Content
		if id < 0 || id >= maxIDs || id >= limit {
			return fmt.Errorf("tokenizer: %s.id: %d out of range", w, id)
		}
		if s == "" || !utf8.ValidString(s) {
			return fmt.Errorf("tokenizer: %s.content: empty or invalid UTF-8", w)
		}
		if a.SingleWord {
			return fmt.Errorf("tokenizer: %s.single_word: true is not supported", w)
		}
		if a.LStrip {
			return fmt.Errorf("tokenizer: %s.lstrip: true is not supported", w)
		}
		if a.RStrip {
			return fmt.Errorf("tokenizer: %s.rstrip: true is not supported", w)
		}
		// HF ignores the ids in the file and assigns its own: the id the content already has,
		// else the next free one after the model vocabulary. A file where the two disagree
		// would be tokenized differently by HF than it reads, so it is refused.
		want, ok := t.added[s]
		if !ok {
			want, ok = t.vocab[s]
		}
		if !ok {
			want = t.nextAddedID()
		}
		if id != want {
			return fmt.Errorf("tokenizer: %s.id: %d, but Hugging Face assigns %q id %d", w, id, s, want)
		}
		t.growIDs(id)
		t.added[s] = id
		t.maxAdded = max(t.maxAdded, id)
		t.idTok[id], t.used[id] = s, true
		if a.Special {
			t.special[s] = true
		}
		// HF first splits on tokens with normalized=false in the raw text, then normalizes the
		// rest and splits on normalized=true tokens. With no normalizer the text is unchanged
		// but the two passes remain, so a raw token wins over an overlapping normalized one.
		if a.Normalized {
			t.normTrie.add(s, id)
		} else {
			t.rawTrie.add(s, id)
		}
	}
	return nil
}

// nextAddedID mirrors AddedVocabulary::add_tokens for a token new to both vocabularies.
func (t *Tokenizer) nextAddedID() int {
	if len(t.added) == 0 {
		return t.modelSize
	}
	if t.maxAdded >= t.modelSize || t.modelSize == 0 {
		return t.maxAdded + 1
	}
	return t.modelSize
}
