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
	// The model (vocabulary and merges, almost all of the file) is parsed where it stands
	// rather than skipped and parsed again; the other fields are small and kept raw.
	sc := &jsonScan{b: data}
	top := map[string][]byte{}
	var model *rawModel
	err := sc.object(func(k string) error {
		if k == "model" {
			if sc.peek() == 'n' {
				v, err := sc.skip(0)
				top[k], model = v, nil
				return err
			}
			m, err := parseModel(sc)
			top[k], model = []byte("{}"), m
			return err
		}
		v, err := sc.skip(0)
		top[k] = v
		return err
	})
	if err == nil {
		err = sc.end()
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "tokenizer: ") {
			return nil, err
		}
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
	if model == nil {
		return nil, errors.New("tokenizer: model: missing")
	}
	if err := t.loadModel(model); err != nil {
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

// rawModel is the model object as parsed, before it is checked.
type rawModel struct {
	m      modelJSON
	arena  []byte      // vocabulary keys, back to back
	vocab  *vocabIndex // keys -> ids
	merges mergeList
}

// mergeList holds the merges' token strings back to back in one arena: merge i is the pair
// arena[at[3i]:at[3i+1]], arena[at[3i+1]:at[3i+2]], whose concatenation is arena[at[3i]:at[3i+2]].
type mergeList struct {
	arena []byte
	at    []uint32
	n     int
}

func parseModel(sc *jsonScan) (*rawModel, error) {
	r := &rawModel{}
	m := &r.m
	fields := map[string]any{"type": &m.Type, "dropout": &m.Dropout, "unk_token": &m.UnkToken,
		"continuing_subword_prefix": &m.ContinuingSubwordPrefix, "end_of_word_suffix": &m.EndOfWordSuffix,
		"fuse_unk": &m.FuseUnk, "byte_fallback": &m.ByteFallback, "ignore_merges": &m.IgnoreMerges}
	start := sc.i
	err := sc.object(func(k string) error {
		switch k {
		case "vocab":
			// Presized from the size of the rest of the file (about 60 bytes per entry in
			// DeepSeek's, counting the merges).
			r.arena, r.vocab = r.arena[:0], newVocabIndex(min((len(sc.b)-start)/64, maxIDs/4))
			if err := parseVocab(sc, r); err != nil {
				return fmt.Errorf("tokenizer: model.vocab: %v", err)
			}
			return nil
		case "merges":
			r.merges = mergeList{}
			return parseMerges(sc, &r.merges)
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
	if err != nil {
		if strings.HasPrefix(err.Error(), "tokenizer: ") {
			return nil, err
		}
		return nil, fmt.Errorf("tokenizer: model: %v", err)
	}
	return r, nil
}

func (t *Tokenizer) loadModel(r *rawModel) error {
	m := &r.m
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
	v := r.vocab
	if v == nil || v.len() == 0 {
		return errors.New("tokenizer: model.vocab: missing or empty")
	}
	t.ignoreMerges = m.IgnoreMerges
	t.fuseUnk = m.FuseUnk
	t.modelSize = v.len()
	// Merges are resolved against the arena as bytes, before it becomes the keys string.
	t.pairs = newPairTable(r.merges.n)
	ml := &r.merges
	for rank := range ml.n {
		s, mid, e := ml.at[3*rank], ml.at[3*rank+1], ml.at[3*rank+2]
		a, b, c := ml.arena[s:mid], ml.arena[mid:e], ml.arena[s:e]
		ia := find(v, r.arena, a, hashKey(a))
		if ia < 0 {
			return fmt.Errorf("tokenizer: model.merges[%d]: token %q is not in the vocabulary", rank, a)
		}
		ib := find(v, r.arena, b, hashKey(b))
		if ib < 0 {
			return fmt.Errorf("tokenizer: model.merges[%d]: token %q is not in the vocabulary", rank, b)
		}
		ic := find(v, r.arena, c, hashKey(c))
		if ic < 0 {
			return fmt.Errorf("tokenizer: model.merges[%d]: merged token %q is not in the vocabulary", rank, c)
		}
		t.pairs.put(v.ids[ia], v.ids[ib], int32(rank), v.ids[ic])
	}
	t.vocab, t.vocabKeys = v, string(r.arena)
	limit := 2*v.len() + 65536
	for e, id32 := range v.ids {
		id := int(id32)
		s := t.vocabKeys[uint32(v.span[e]) : v.span[e]>>32]
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
		id, ok := t.vocabID(*m.UnkToken)
		if !ok {
			return fmt.Errorf("tokenizer: model.unk_token: %q is not in the vocabulary", *m.UnkToken)
		}
		t.unkID = int32(id)
	}
	return nil
}

// parseVocab reads the {"token": id, ...} object into r's arena and index.
func parseVocab(sc *jsonScan, r *rawModel) error {
	if sc.peek() == 'n' {
		_, err := sc.skip(0)
		return err
	}
	if err := sc.expect('{'); err != nil {
		return err
	}
	if sc.peek() == '}' {
		sc.i++
		return nil
	}
	for {
		k, err := sc.strBytes()
		if err != nil {
			return err
		}
		if err := sc.expect(':'); err != nil {
			return err
		}
		id, err := sc.integer()
		if err != nil {
			return err
		}
		if id < -1<<31 || id >= 1<<31 {
			return fmt.Errorf("model.vocab[%q]: id %d out of range", k, id)
		}
		off := len(r.arena)
		r.arena = append(r.arena, k...)
		if !r.vocab.set(r.arena, off, len(r.arena), int32(id)) {
			r.arena = r.arena[:off]
		}
		if sc.peek() == ',' {
			sc.i++
			continue
		}
		return sc.expect('}')
	}
}

// parseMerges accepts both forms HF writes: "a b" strings (older files) and [a, b] arrays.
func parseMerges(sc *jsonScan, ml *mergeList) error {
	if sc.peek() == 'n' {
		_, err := sc.skip(0)
		return err
	}
	add := func(a, b []byte) {
		s := len(ml.arena)
		ml.arena = append(append(ml.arena, a...), b...)
		ml.at = append(ml.at, uint32(s), uint32(s+len(a)), uint32(len(ml.arena)))
		ml.n++
	}
	var first, second []byte
	err := sc.array(func(i int) error {
		if sc.peek() == '"' {
			s, err := sc.strBytes()
			if err != nil {
				return err
			}
			sp := bytes.IndexByte(s, ' ')
			if sp < 0 || bytes.IndexByte(s[sp+1:], ' ') >= 0 {
				return fmt.Errorf("tokenizer: model.merges[%d]: %q is not two tokens separated by one space", i, s)
			}
			add(s[:sp], s[sp+1:])
			return nil
		}
		n := 0
		err := sc.array(func(j int) error {
			s, err := sc.strBytes()
			switch n {
			case 0:
				first = append(first[:0], s...)
			case 1:
				second = append(second[:0], s...)
			}
			n++
			return err
		})
		if err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("tokenizer: model.merges[%d]: %d elements, want 2", i, n)
		}
		add(first, second)
		return nil
	})
	if err != nil && !strings.HasPrefix(err.Error(), "tokenizer: ") {
		err = fmt.Errorf("tokenizer: model.merges: %v", err)
	}
	return err
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
			want, ok = t.vocabID(s)
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
