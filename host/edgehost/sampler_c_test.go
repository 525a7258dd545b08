package edgehost_test

// Tests of the C sampler module (wasm/plugins/sampler): it must give the
// Go edge's replies byte for byte, reject what the Go edge rejects, agree
// with the native Go sampler, never trap, and not leak memory.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
	"github.com/edgeseek/edgeseek/wasm/sampler"
)

const samplerCPath = "../../build/wasm/plugins/sampler.wasm"

func samplerCBytes(t testing.TB) []byte { return builtPlugin(t, samplerCPath) }

// builtPlugin reads a module wasm/build.sh wrote.
func builtPlugin(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run wasm/build.sh first", err)
	}
	return b
}

func samplerC(t testing.TB, r *edgehost.Runtime) *edgehost.Instance {
	t.Helper()
	return samplerCOf(t, r, samplerCBytes(t))
}

// samplerCOf instantiates a build of the C module (cPluginOf).
func samplerCOf(t testing.TB, r *edgehost.Runtime, wasm []byte) *edgehost.Instance {
	return cPluginOf(t, r, "sampler", wasm)
}

// cPluginOf instantiates a build of one of the C plugins. The host must
// instrument it (SIMD included), so that it runs as in production rather
// than under the slower CloseOnContextDone.
func cPluginOf(t testing.TB, r *edgehost.Runtime, name string, wasm []byte) *edgehost.Instance {
	t.Helper()
	ctx := context.Background()
	m, err := r.Compile(ctx, name, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Interruptible() {
		t.Fatalf("the host did not instrument the %s module", name)
	}
	in, err := m.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(ctx) })
	return in
}

// scPair is the C sampler and the Go edge, both in wazero, fed the same
// requests.
type scPair struct {
	c, g *edgehost.Instance
}

func newSCPair(t testing.TB) *scPair {
	r := newRuntime(t, edgehost.Config{})
	return &scPair{c: samplerC(t, r), g: goEdge(t, r)}
}

// call sends req to both and checks that the replies agree: the same
// bytes when successful, errors with the same code otherwise. It returns
// the C module's reply.
func (p *scPair) call(t testing.TB, fn string, req []byte) []byte {
	t.Helper()
	return callBoth(t, p.c, p.g, fn, req, nil)
}

// callBoth sends the same request bytes to a C module and the Go edge and
// fails t unless the replies agree (scCompare); explain, if not nil,
// rewrites the disagreement for the reader. It returns the C module's
// reply.
func callBoth(t testing.TB, c, g *edgehost.Instance, fn string, req []byte, explain func(cr, gr []byte, msg string) string) []byte {
	t.Helper()
	ctx := context.Background()
	cr, err := c.Call(ctx, fn, req)
	if err != nil {
		t.Fatalf("%s %q: C module failed: %v", fn, scHead(req), err)
	}
	gr, err := g.Call(ctx, fn, req)
	if err != nil {
		t.Fatalf("%s %q: Go edge failed: %v", fn, scHead(req), err)
	}
	if msg := scCompare(cr, gr); msg != "" {
		if explain != nil {
			msg = explain(cr, gr, msg)
		}
		t.Fatalf("%s %q: %s", fn, scHead(req), msg)
	}
	return cr
}

// scCompare returns "" when the replies agree.
func scCompare(cr, gr []byte) string {
	if len(cr) == 0 || len(gr) == 0 {
		return fmt.Sprintf("empty reply: C %x, Go %x", cr, gr)
	}
	if cr[0] == protocol.ABIStatusOK && gr[0] == protocol.ABIStatusOK {
		if !bytes.Equal(cr, gr) {
			return fmt.Sprintf("replies differ:\nC  %x\nGo %x", cr, gr)
		}
		return ""
	}
	ce, cerr := scError(cr)
	ge, gerr := scError(gr)
	if cerr != nil || gerr != nil {
		return fmt.Sprintf("C %s (%v), Go %s (%v)", ce, cerr, ge, gerr)
	}
	if ce.Code != ge.Code {
		return fmt.Sprintf("error codes differ: C %q %q, Go %q %q", ce.Code, ce.Message, ge.Code, ge.Message)
	}
	if ce.Message == "" {
		return "C error without a message"
	}
	return ""
}

// scError decodes an error reply; a successful one is an error here.
func scError(resp []byte) (*protocol.Error, error) {
	err := protocol.ParseABIResponse(resp, &protocol.Empty{})
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe, nil
	}
	if err == nil {
		return &protocol.Error{Code: "ok"}, nil
	}
	if len(resp) > 0 && resp[0] == protocol.ABIStatusOK {
		return &protocol.Error{Code: "ok"}, nil
	}
	return nil, err
}

func scHead(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

func scMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := protocol.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- raw msgpack for requests protocol.Marshal would refuse ----

type mpRaw []byte

func mpv(t testing.TB, v any) []byte {
	t.Helper()
	if r, ok := v.(mpRaw); ok {
		return r
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mpMap(t testing.TB, kv ...any) mpRaw {
	t.Helper()
	n := len(kv) / 2
	var b []byte
	if n < 16 {
		b = []byte{0x80 | byte(n)}
	} else {
		b = []byte{0xde, byte(n >> 8), byte(n)}
	}
	for _, v := range kv {
		b = append(b, mpv(t, v)...)
	}
	return b
}

func mpArr(t testing.TB, vs ...any) mpRaw {
	t.Helper()
	n := len(vs)
	var b []byte
	if n < 16 {
		b = []byte{0x90 | byte(n)}
	} else {
		b = []byte{0xdc, byte(n >> 8), byte(n)}
	}
	for _, v := range vs {
		b = append(b, mpv(t, v)...)
	}
	return b
}

func mpF32(f float32) mpRaw {
	return binary.BigEndian.AppendUint32([]byte{0xca}, math.Float32bits(f))
}

func mpF64(f float64) mpRaw {
	return binary.BigEndian.AppendUint64([]byte{0xcb}, math.Float64bits(f))
}

func mpU64(v uint64) mpRaw { return binary.BigEndian.AppendUint64([]byte{0xcf}, v) }

func mpBin(b []byte) mpRaw {
	return binary.BigEndian.AppendUint32([]byte{0xc6}, uint32(len(b))) // bin32
}

func mpBinData(b []byte) mpRaw { return append(mpBin(b), b...) }

func mpStrData(b []byte) mpRaw {
	return append(binary.BigEndian.AppendUint32([]byte{0xdb}, uint32(len(b))), b...)
}

// ---- random parameters and logits ----

// scParams returns random sampling parameters for a vocabulary of n; extreme
// parameters (penalties or temperatures at the ends of float32/float64)
// are only compared between the two WebAssembly modules.
func scParams(rng *rand.Rand, n int) (p protocol.SamplingParams, extreme bool) {
	pick := func(vs ...float64) float64 { return vs[rng.IntN(len(vs))] }
	p.Temperature = pick(0, 1e-3, 0.3, 0.8, 0.8, 1, 1, 2)
	p.TopK = []int32{0, 0, 0, 1, 5, 40, int32(n - 1), int32(n + 3)}[rng.IntN(8)]
	p.TopP = pick(0, 0, 0.1, 0.5, 0.95, 0.95, 1)
	p.MinP = pick(0, 0, 0, 0.05, 0.5)
	if rng.IntN(3) == 0 {
		p.RepetitionPenalty = pick(0, 1, 1.1, 1.3, 0.8, 2)
		p.PresencePenalty = pick(0, 0.5, -1, 2, -2)
		p.FrequencyPenalty = pick(0, 0.3, -0.5, 2)
		p.PenaltyLastN = []int32{0, 0, 1, 4, 64}[rng.IntN(5)]
	}
	if rng.IntN(3) == 0 {
		p.LogitBias = map[int32]float32{}
		for range 1 + rng.IntN(6) {
			id := int32(rng.IntN(n))
			p.LogitBias[id] = float32(pick(100, -100, 5, -5, 0.5, -100, 0)) + float32(rng.Float64()-0.5)*float32(rng.IntN(2))
			if p.LogitBias[id] > 100 || p.LogitBias[id] < -100 {
				p.LogitBias[id] = 100 * float32(math.Copysign(1, float64(p.LogitBias[id])))
			}
		}
		if rng.IntN(8) == 0 { // many entries (the module's indexed path)
			for range 100 {
				p.LogitBias[int32(rng.IntN(n))] = float32(rng.NormFloat64() * 10)
			}
		}
	}
	if rng.IntN(3) == 0 {
		for range 1 + rng.IntN(4) {
			p.StopTokens = append(p.StopTokens, int32(rng.IntN(n)))
		}
	}
	if rng.IntN(4) == 0 {
		p.MaxTokens = int32(1 + rng.IntN(5))
	}
	p.Seed = rng.Uint64()
	if rng.IntN(2) == 0 {
		p.LogProbs = true
		p.TopLogProbs = int32(rng.IntN(21))
	}
	if rng.IntN(12) == 0 {
		extreme = true
		switch rng.IntN(5) {
		case 0:
			p.RepetitionPenalty = 1e300 // float32(rep) = +Inf: 0·Inf = NaN logits
		case 1:
			p.RepetitionPenalty = 1e-300 // float32(rep) = 0: x/0 = ±Inf
		case 2:
			p.RepetitionPenalty = 3e-39 // subnormal float32
		case 3:
			p.Temperature = 5e-324
		case 4:
			p.Temperature = 1e300
		}
	}
	return p, extreme
}

// scLogits returns n logits of a random kind.
func scLogits(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	switch rng.IntN(7) {
	case 0, 1: // normal
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 3)
		}
	case 2: // peaked, like a confident model step
		copy(x, sampler.PeakedLogits(n, rng.Uint64()))
	case 3: // ties: few distinct values
		for i := range x {
			x[i] = float32(rng.IntN(7)) / 2
		}
	case 4: // some masked tokens (-Inf), never all
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 2)
			if rng.IntN(3) == 0 {
				x[i] = float32(math.Inf(-1))
			}
		}
		x[rng.IntN(n)] = 1
	case 5: // exact zeros and signed zeros among others
		for i := range x {
			switch rng.IntN(4) {
			case 0:
				x[i] = 0
			case 1:
				x[i] = float32(math.Copysign(0, -1))
			default:
				x[i] = float32(rng.NormFloat64())
			}
		}
	case 6: // all equal
		v := float32(rng.NormFloat64())
		for i := range x {
			x[i] = v
		}
	}
	return x
}

func scNative(p protocol.SamplingParams) sampler.Params {
	sp := sampler.Params{
		Temperature: p.Temperature, TopK: int(p.TopK), TopP: p.TopP, MinP: p.MinP,
		RepetitionPenalty: p.RepetitionPenalty, PresencePenalty: p.PresencePenalty,
		FrequencyPenalty: p.FrequencyPenalty, PenaltyLastN: int(p.PenaltyLastN),
		MaxTokens: int(p.MaxTokens), Seed: p.Seed, LogProbs: p.LogProbs, TopLogProbs: int(p.TopLogProbs),
	}
	for _, id := range p.StopTokens {
		sp.StopTokens = append(sp.StopTokens, int(id))
	}
	if len(p.LogitBias) > 0 {
		sp.LogitBias = map[int]float32{}
		for id, b := range p.LogitBias {
			sp.LogitBias[int(id)] = b
		}
	}
	return sp
}

func scClose(a, b float32) bool {
	if a == b {
		return true
	}
	d := math.Abs(float64(a) - float64(b))
	return d <= 1e-6*math.Max(math.Abs(float64(a)), math.Abs(float64(b)))+1e-12
}

// TestSamplerCDifferential: for hundreds of random parameter sets,
// vocabularies and logits, several steps each with a growing history, the
// C module's replies equal the Go edge's byte for byte, and the native Go
// sampler picks the same tokens.
func TestSamplerCDifferential(t *testing.T) {
	p := newSCPair(t)
	seed := uint64(1)
	if v := os.Getenv("EDGESEEK_SAMPLER_C_SEED"); v != "" { // more cases: go test -run SamplerCDifferential with other seeds
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	sets := 400
	if testing.Short() {
		sets = 100
	}
	stats := map[string]int{}
	for set := range sets {
		vocabs := []int{1, 2, 3, 7, 100, 1000, 1000, 1000, 5000}
		n := vocabs[rng.IntN(len(vocabs))]
		if set%60 == 7 {
			n = 129280
		}
		params, extreme := scParams(rng, n)
		hc := p.call(t, protocol.FnSamplerNew, scMarshal(t, &protocol.SamplerNew{Params: params}))
		var h protocol.HandleReply
		if err := protocol.ParseABIResponse(hc, &h); err != nil {
			t.Fatalf("set %d: sampler_new %+v: %v", set, params, err)
		}
		ns, err := sampler.New(scNative(params))
		if err != nil {
			t.Fatalf("set %d: native New: %v", set, err)
		}
		f16 := rng.IntN(3) == 0
		var hist []int32
		for range 3 + rng.IntN(20) {
			hist = append(hist, int32(rng.IntN(n)))
		}
		if rng.IntN(10) == 0 { // ids beyond the vocabulary: an error when penalties apply
			hist = append(hist, int32(n+rng.IntN(5)))
		}
		steps := 2 + rng.IntN(6)
		if n == 129280 {
			steps = 2
		}
		for step := range steps {
			logits := scLogits(rng, n)
			req := &protocol.SampleRequest{Handle: h.Handle, History: hist}
			if f16 {
				req.F16 = protocol.EncodeFloat16(logits)
			} else {
				req.F32 = edge.EncodeF32(logits)
			}
			cr := p.call(t, protocol.FnSample, scMarshal(t, req))
			histInts := make([]int, len(hist))
			for i, id := range hist {
				histInts[i] = int(id)
			}
			var nc sampler.Choice
			var nerr error
			if f16 {
				bits := make([]uint16, n)
				for i := range bits {
					bits[i] = binary.LittleEndian.Uint16(req.F16[2*i:])
				}
				nc, nerr = ns.SampleFloat16(bits, histInts)
			} else {
				nc, nerr = ns.Sample(logits, histInts)
			}
			var rep protocol.SampleReply
			werr := protocol.ParseABIResponse(cr, &rep)
			where := fmt.Sprintf("set %d step %d (n %d, f16 %v, params %+v)", set, step, n, f16, params)
			if werr != nil {
				stats["error"]++
				if e, _ := scError(cr); e != nil {
					stats[e.Message]++
				}
				if !extreme && nerr == nil {
					t.Fatalf("%s: wasm error %v, native %+v", where, werr, nc)
				}
				continue
			}
			stats["ok"]++
			if rep.Finish != "" {
				stats["finish "+rep.Finish]++
			}
			if len(rep.Top) > 0 {
				stats["top"]++
			}
			if !extreme {
				if nerr != nil {
					t.Fatalf("%s: native error %v, wasm %+v", where, nerr, rep)
				}
				if int(rep.ID) != nc.ID || rep.Finish != nc.Finish.String() || !scClose(rep.LogProb, nc.LogProb) || len(rep.Top) != len(nc.Top) {
					t.Fatalf("%s: wasm %+v, native %+v", where, rep, nc)
				}
				for i, a := range rep.Top {
					if int(a.ID) != nc.Top[i].ID || !scClose(a.LogProb, nc.Top[i].LogProb) {
						t.Fatalf("%s: top[%d]: wasm %+v, native %+v", where, i, a, nc.Top[i])
					}
				}
			}
			hist = append(hist, rep.ID)
		}
		p.call(t, protocol.FnRelease, scMarshal(t, &protocol.HandleRequest{Handle: h.Handle}))
	}
	t.Logf("%d parameter sets: %v", sets, stats)
	if stats["ok"] < sets || stats["error"] == 0 || stats["finish stop"] == 0 || stats["finish length"] == 0 || stats["top"] == 0 {
		t.Fatalf("the random cases miss some outcomes: %v", stats)
	}
}

// TestSamplerCEncodings: the two modules accept and reject the same
// requests, including the unusual encodings the Go edge's decoder takes
// (nil and array-encoded structs, bin keys, repeated keys, integers for
// floats, truncated integer widths, an ext header before a map) and the
// invalid values protocol's Validate refuses.
func TestSamplerCEncodings(t *testing.T) {
	p := newSCPair(t)
	nan32, nan64 := float32(math.NaN()), math.NaN()
	inf := math.Inf(1)
	params := func(kv ...any) mpRaw { return mpMap(t, "params", mpMap(t, kv...)) }
	many := make([]any, 0, 2000)
	for i := range 2000 {
		many = append(many, i%700)
	}
	// 60 entries over 25 ids: earlier values out of range, the last ones in.
	var dupBias, dupBiasBad []any
	for i := range 60 {
		v := float32(300)
		if i >= 35 {
			v = float32(i%7) - 3
		}
		dupBias = append(dupBias, i%25*3, mpF32(v))
		dupBiasBad = append(dupBiasBad, i%25*3, mpF32(v))
	}
	dupBiasBad = append(dupBiasBad, 30, mpF32(-101))
	fields14 := mpArr(t, 0.7, 3, 0.9, 0.01, 1.2, 0.1, 0.2, 8, mpMap(t, 2, mpF32(1.5)), mpArr(t, 5, 6), 9, 77, true, 2)
	type tc struct {
		name string
		req  []byte
		ok   int // 1 must succeed, -1 must fail, 0 either (but the same)
	}
	newCases := []tc{
		{"nil request", []byte{0xc0}, 1},
		{"empty map", []byte{0x80}, 1},
		{"empty array", []byte{0x90}, 1},
		{"params nil", mpMap(t, "params", nil), 1},
		{"params empty array", mpMap(t, "params", mpArr(t)), 1},
		{"params as array", mpMap(t, "params", fields14), 1},
		{"request as array", mpArr(t, fields14), 1},
		{"params array too short", mpMap(t, "params", mpArr(t, 0.5, 3)), -1},
		{"bin keys", mpMap(t, mpRaw{0xc4, 6, 'p', 'a', 'r', 'a', 'm', 's'}, mpMap(t, mpRaw{0xc4, 11, 't', 'e', 'm', 'p', 'e', 'r', 'a', 't', 'u', 'r', 'e'}, 0.5)), 1},
		{"nil key", mpMap(t, nil, 1), -1},
		{"unknown field", mpMap(t, "foo", 1), -1},
		{"unknown param", params("temp", 1), -1},
		{"int temperature", params("temperature", 1, "seed", 5), 1},
		{"float32 temperature", params("temperature", mpF32(0.7), "seed", 5), 1},
		{"nil temperature", params("temperature", nil), 1},
		{"uint64 temperature", params("temperature", mpU64(1<<63+5)), -1}, // -2^63+5 as int64
		{"negative temperature", params("temperature", -0.5), -1},
		{"NaN temperature", params("temperature", mpF64(nan64)), -1},
		{"Inf temperature", params("temperature", mpF64(inf)), -1},
		{"string temperature", params("temperature", "hot"), -1},
		{"top_k truncated to int32", params("temperature", 1, "top_k", mpU64(1<<32+5)), 1},
		{"top_k negative", params("top_k", -1), -1},
		{"top_k float", params("top_k", 2.0), -1},
		{"top_p 1.5", params("top_p", 1.5), -1},
		{"top_p NaN", params("top_p", mpF64(nan64)), -1},
		{"min_p 2", params("min_p", 2), -1},
		{"min_p negative", params("min_p", -0.1), -1},
		{"repetition_penalty negative", params("repetition_penalty", -1), -1},
		{"repetition_penalty Inf", params("repetition_penalty", mpF64(inf)), -1},
		{"repetition_penalty huge", params("temperature", 1, "repetition_penalty", 1e300), 1},
		{"presence_penalty 2.5", params("presence_penalty", 2.5), -1},
		{"frequency_penalty -2.5", params("frequency_penalty", -2.5), -1},
		{"penalty_last_n negative", params("penalty_last_n", -1), -1},
		{"max_tokens negative", params("max_tokens", -5), -1},
		{"max_tokens truncated", params("max_tokens", mpU64(1<<32+1)), 1},
		{"top_logprobs 21", params("logprobs", true, "top_logprobs", 21), -1},
		{"top_logprobs without logprobs", params("top_logprobs", 3), -1},
		{"logprobs int", params("logprobs", 1), -1},
		{"logprobs nil", params("logprobs", nil), 1},
		{"seed negative", params("temperature", 1, "seed", -1), 1},
		{"seed float", params("seed", 1.0), -1},
		{"bias", params("temperature", 1, "logit_bias", mpMap(t, 3, mpF32(50), 9, -100)), 1},
		{"bias negative id", params("logit_bias", mpMap(t, -1, mpF32(1))), -1},
		{"bias id MaxVocab", params("logit_bias", mpMap(t, 1<<20, mpF32(1))), -1},
		{"bias id truncated", params("temperature", 1, "logit_bias", mpMap(t, mpU64(1<<32+3), mpF32(7))), 1},
		{"bias nil id", params("temperature", 1, "logit_bias", mpMap(t, nil, mpF32(7))), 1},
		{"bias 101", params("logit_bias", mpMap(t, 5, mpF32(101))), -1},
		{"bias NaN", params("logit_bias", mpMap(t, 5, mpF32(nan32))), -1},
		{"bias float64", params("logit_bias", mpMap(t, 5, mpF64(1))), -1},
		{"bias int", params("temperature", 1, "logit_bias", mpMap(t, 5, 3)), 1},
		{"bias nil", params("logit_bias", nil), 1},
		{"bias ext header", params("temperature", 1, "logit_bias", mpRaw{0xd4, 0x00, 0x80}), 1},
		{"bias ext8 header", params("temperature", 1, "logit_bias", mpRaw{0xc7, 0x01, 0x05, 0x80}), 0},
		{"bias merged", params("temperature", 1, "logit_bias", mpMap(t, 5, mpF32(1)), "logit_bias", mpMap(t, 7, mpF32(-2))), 1},
		{"bias overwritten", params("temperature", 1, "logit_bias", mpMap(t, 5, mpF32(200)), "logit_bias", mpMap(t, 5, mpF32(1))), 1},
		{"bias reset", params("temperature", 1, "logit_bias", mpMap(t, -1, mpF32(200)), "logit_bias", nil), 1},
		{"bias duplicate keys", params("temperature", 1, "logit_bias", mpMap(t, 5, mpF32(300), 5, mpF32(-3))), 1},
		{"bias duplicate keys, bad last", params("logit_bias", mpMap(t, 5, mpF32(3), 5, mpF32(-300))), -1},
		{"bias array", params("logit_bias", mpArr(t, 1, 2)), -1},
		{"bias many duplicate keys", params("temperature", 1, "logit_bias", mpMap(t, dupBias...)), 1},
		{"bias many duplicate keys, bad last", params("temperature", 1, "logit_bias", mpMap(t, dupBiasBad...)), -1},
		{"bias many, reset, few", params("temperature", 1, "logit_bias", mpMap(t, dupBiasBad...), "logit_bias", nil, "logit_bias", mpMap(t, 4, mpF32(9))), 1},
		{"stop tokens", params("temperature", 1, "stop_tokens", mpArr(t, 4, 4, 2)), 1},
		{"stop token negative", params("stop_tokens", mpArr(t, -1)), -1},
		{"stop token MaxVocab", params("stop_tokens", mpArr(t, 1<<20)), -1},
		{"stop tokens 2000", params("stop_tokens", mpArr(t, many...)), -1},
		{"stop tokens 2000 replaced", params("stop_tokens", mpArr(t, many...), "stop_tokens", mpArr(t, 3)), 1},
		{"stop tokens nil", params("stop_tokens", nil), 1},
		{"stop token truncated", params("temperature", 1, "stop_tokens", mpArr(t, mpU64(1<<32+2))), 1},
		{"params merged", mpMap(t, "params", mpMap(t, "temperature", 1), "params", mpMap(t, "top_k", 3)), 1},
		{"params reset", mpMap(t, "params", mpMap(t, "temperature", -1), "params", nil), 1},
		{"params reset by empty array", mpMap(t, "params", mpMap(t, "max_tokens", 1, "logit_bias", mpMap(t, 2, mpF32(5))), "params", mpArr(t)), 1},
		{"truncated", params("temperature", 1)[:9], -1},
		{"trailing byte", append(params("temperature", 1), 0), -1},
		{"reserved byte", []byte{0xc1}, -1},
		{"empty", []byte{}, -1},
		{"too deep", append(append([]byte{0x81, 0xa3, 'f', 'o', 'o'}, bytes.Repeat([]byte{0x91}, 20)...), 0), -1},
		{"map16 params", []byte{0xde, 0, 1, 0xa6, 'p', 'a', 'r', 'a', 'm', 's', 0xdf, 0, 0, 0, 1, 0xab, 't', 'e', 'm', 'p', 'e', 'r', 'a', 't', 'u', 'r', 'e', 0xd0, 2}, 1},
		{"str8 key", append([]byte{0x81, 0xd9, 6}, append([]byte("params"), 0x80)...), 1},
		{"map32 huge count", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, -1},
	}
	ctx := context.Background()
	logits := edge.EncodeF32(randLogits(300, 3))
	for _, c := range newCases {
		t.Run(c.name, func(t *testing.T) {
			cr := p.call(t, protocol.FnSamplerNew, c.req)
			ok := cr[0] == protocol.ABIStatusOK
			if (c.ok == 1 && !ok) || (c.ok == -1 && ok) {
				e, _ := scError(cr)
				t.Fatalf("success %v, want %d: %v", ok, c.ok, e)
			}
			if !ok {
				return
			}
			var h protocol.HandleReply
			if err := protocol.ParseABIResponse(cr, &h); err != nil {
				t.Fatal(err)
			}
			// The parameters took the same effect.
			for step := range 3 {
				p.call(t, protocol.FnSample, scMarshal(t, &protocol.SampleRequest{Handle: h.Handle, F32: logits, History: []int32{1, 2, int32(step)}}))
			}
			p.call(t, protocol.FnRelease, scMarshal(t, &protocol.HandleRequest{Handle: h.Handle}))
		})
	}

	// Sample requests.
	var h protocol.HandleReply
	if err := protocol.ParseABIResponse(p.call(t, protocol.FnSamplerNew, params("temperature", 1, "seed", 3, "repetition_penalty", 1.2, "logprobs", true, "top_logprobs", 2)), &h); err != nil {
		t.Fatal(err)
	}
	hh := int(h.Handle)
	raw := randLogits(50, 9)
	f32 := edge.EncodeF32(raw)
	f16 := protocol.EncodeFloat16(raw)
	bad := func(f float32) []byte {
		x := slices.Clone(raw)
		x[17] = f
		return edge.EncodeF32(x)
	}
	allNegInf := edge.EncodeF32(slices.Repeat([]float32{float32(math.Inf(-1))}, 50))
	sampleCases := []tc{
		{"plain", mpMap(t, "handle", hh, "f32", mpBinData(f32)), 1},
		{"f16", mpMap(t, "handle", hh, "f16", mpBinData(f16), "history", mpArr(t, 3, 4)), 1},
		{"str logits", mpMap(t, "handle", hh, "f32", mpStrData(f32)), 1},
		{"as array", mpArr(t, hh, mpBinData(f32), nil, mpArr(t, 1, 2)), 1},
		{"as short array", mpArr(t, hh, mpBinData(f32)), -1},
		{"handle truncated", mpMap(t, "handle", mpU64(1<<32+uint64(hh)), "f32", mpBinData(f32)), 1},
		{"handle -1", mpMap(t, "handle", -1, "f32", mpBinData(f32)), -1},
		{"handle 0", mpMap(t, "handle", 0, "f32", mpBinData(f32)), -1},
		{"handle unknown", mpMap(t, "handle", 9999, "f32", mpBinData(f32)), -1},
		{"handle float", mpMap(t, "handle", float64(hh), "f32", mpBinData(f32)), -1},
		{"f32 repeated", mpMap(t, "handle", hh, "f32", mpBinData(f16), "f32", mpBinData(f32)), 1},
		{"f32 then nil", mpMap(t, "handle", hh, "f32", mpBinData(f32), "f32", nil, "f16", mpBinData(f16)), 1},
		{"both", mpMap(t, "handle", hh, "f32", mpBinData(f32), "f16", mpBinData(f16)), -1},
		{"neither", mpMap(t, "handle", hh), -1},
		{"nil", []byte{0xc0}, -1},
		{"empty f32", mpMap(t, "handle", hh, "f32", mpBinData(nil)), -1},
		{"f32 odd length", mpMap(t, "handle", hh, "f32", mpBinData(f32[:6])), -1},
		{"f16 odd length", mpMap(t, "handle", hh, "f16", mpBinData(f16[:7])), -1},
		{"NaN logit", mpMap(t, "handle", hh, "f32", mpBinData(bad(float32(math.NaN())))), -1},
		{"+Inf logit", mpMap(t, "handle", hh, "f32", mpBinData(bad(float32(math.Inf(1))))), -1},
		{"-Inf logit", mpMap(t, "handle", hh, "f32", mpBinData(bad(float32(math.Inf(-1))))), 1},
		{"all -Inf", mpMap(t, "handle", hh, "f32", mpBinData(allNegInf)), -1},
		{"f16 NaN", mpMap(t, "handle", hh, "f16", mpBinData([]byte{0x01, 0x7e, 0, 0})), -1},
		{"f16 +Inf", mpMap(t, "handle", hh, "f16", mpBinData([]byte{0x00, 0x7c, 0, 0})), -1},
		{"history nil", mpMap(t, "handle", hh, "f32", mpBinData(f32), "history", nil), 1},
		{"history truncated ids", mpMap(t, "handle", hh, "f32", mpBinData(f32), "history", mpArr(t, mpU64(1<<32+5))), 1},
		{"history negative", mpMap(t, "handle", hh, "f32", mpBinData(f32), "history", mpArr(t, -1)), -1},
		{"history MaxVocab", mpMap(t, "handle", hh, "f32", mpBinData(f32), "history", mpArr(t, 1<<20)), -1},
		{"history beyond vocab", mpMap(t, "handle", hh, "f32", mpBinData(f32), "history", mpArr(t, 60)), -1},
		{"history float", mpMap(t, "handle", hh, "f32", mpBinData(f32), "history", mpArr(t, 1.0)), -1},
		{"unknown field", mpMap(t, "handle", hh, "f32", mpBinData(f32), "x", 1), -1},
		{"truncated", mpMap(t, "handle", hh, "f32", mpBinData(f32))[:40], -1},
		{"bin length beyond the end", append(mpMap(t, "handle", hh, "f32", mpBin(f32)), f32[:100]...), -1},
	}
	for _, c := range sampleCases {
		t.Run("sample "+c.name, func(t *testing.T) {
			cr := p.call(t, protocol.FnSample, c.req)
			if ok := cr[0] == protocol.ABIStatusOK; (c.ok == 1 && !ok) || (c.ok == -1 && ok) {
				e, _ := scError(cr)
				t.Fatalf("success %v, want %d: %v", ok, c.ok, e)
			}
		})
	}

	// Per-sampler limits: a bias id beyond the vocabulary, max_tokens.
	var hb, hm protocol.HandleReply
	protocol.ParseABIResponse(p.call(t, protocol.FnSamplerNew, params("temperature", 1, "logit_bias", mpMap(t, 70, mpF32(3)))), &hb)
	if cr := p.call(t, protocol.FnSample, mpMap(t, "handle", int(hb.Handle), "f32", mpBinData(f32))); cr[0] == protocol.ABIStatusOK {
		t.Fatal("a bias id beyond the vocabulary was accepted")
	}
	protocol.ParseABIResponse(p.call(t, protocol.FnSamplerNew, params("temperature", 1, "max_tokens", 2)), &hm)
	for i, want := range []byte{0, 0, 1, 1} {
		if cr := p.call(t, protocol.FnSample, mpMap(t, "handle", int(hm.Handle), "f32", mpBinData(f32))); cr[0] != want {
			t.Fatalf("max_tokens 2: step %d status %d", i, cr[0])
		}
	}

	// Release.
	for _, c := range []tc{
		{"release nil", []byte{0xc0}, -1},
		{"release 0", mpMap(t, "handle", 0), -1},
		{"release unknown", mpMap(t, "handle", 12345), -1},
		{"release unknown field", mpMap(t, "handle", hh, "x", 1), -1},
		{"release as array", mpArr(t, hh), 1},
		{"release twice", mpMap(t, "handle", hh), -1},
		{"release other", mpMap(t, "handle", int(hb.Handle)), 1},
	} {
		cr := p.call(t, protocol.FnRelease, c.req)
		if ok := cr[0] == protocol.ABIStatusOK; (c.ok == 1 && !ok) || (c.ok == -1 && ok) {
			t.Fatalf("%s: success %v, want %d", c.name, ok, c.ok)
		}
	}
	if _, err := p.c.Call(ctx, protocol.FnSample, mpMap(t, "handle", hh, "f32", mpBinData(f32))); err != nil {
		t.Fatal(err)
	}
}

// TestSamplerCMutations: random, truncated and mutated requests never make
// the module trap; the Go edge answers them the same way; a good call
// still works after each bad one.
func TestSamplerCMutations(t *testing.T) {
	p := newSCPair(t)
	rng := rand.New(rand.NewPCG(7, 8))
	var good protocol.HandleReply
	if err := protocol.ParseABIResponse(p.call(t, protocol.FnSamplerNew, scMarshal(t, &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 1, TopP: 0.9, Seed: 1}})), &good); err != nil {
		t.Fatal(err)
	}
	goodReq := scMarshal(t, &protocol.SampleRequest{Handle: good.Handle, F32: edge.EncodeF32(randLogits(64, 1))})
	var seeds [][]byte
	for range 20 {
		params, _ := scParams(rng, 64)
		seeds = append(seeds, scMarshal(t, &protocol.SamplerNew{Params: params}))
	}
	for range 20 {
		req := &protocol.SampleRequest{Handle: protocol.Handle(1 + rng.IntN(3)), History: []int32{int32(rng.IntN(70)), 3}}
		if rng.IntN(2) == 0 {
			req.F32 = edge.EncodeF32(scLogits(rng, 1+rng.IntN(64)))
		} else {
			req.F16 = protocol.EncodeFloat16(scLogits(rng, 1+rng.IntN(64)))
		}
		seeds = append(seeds, scMarshal(t, req))
	}
	fns := []string{protocol.FnSamplerNew, protocol.FnSample, protocol.FnRelease}
	iters := 6000
	if testing.Short() {
		iters = 1000
	}
	answered := map[byte]int{}
	for i := range iters {
		b := slices.Clone(seeds[rng.IntN(len(seeds))])
		switch rng.IntN(6) {
		case 0: // truncate
			b = b[:rng.IntN(len(b)+1)]
		case 1, 2: // flip bytes
			for range 1 + rng.IntN(4) {
				b[rng.IntN(len(b))] = byte(rng.Uint32())
			}
		case 3: // insert bytes
			at := rng.IntN(len(b) + 1)
			ins := make([]byte, 1+rng.IntN(8))
			for j := range ins {
				ins[j] = byte(rng.Uint32())
			}
			b = slices.Insert(b, at, ins...)
		case 4: // random bytes
			b = make([]byte, rng.IntN(40))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		case 5: // set a length or count byte to a large value
			for j := range b {
				if b[j] >= 0xc4 && b[j] <= 0xdf && rng.IntN(3) == 0 && j+1 < len(b) {
					b[j+1] = 0xff
				}
			}
		}
		fn := fns[rng.IntN(3)]
		if i%3 == 0 {
			fn = protocol.FnSample
		}
		cr := p.call(t, fn, b)
		answered[cr[0]]++
		// A good call still works (and the two modules stay in step).
		if rep := p.call(t, protocol.FnSample, goodReq); rep[0] != protocol.ABIStatusOK {
			e, _ := scError(rep)
			// The mutated request may have released the good sampler.
			if !strings.Contains(e.Message, "handle") {
				t.Fatalf("good request after %x: %v", b, e)
			}
			protocol.ParseABIResponse(p.call(t, protocol.FnSamplerNew, scMarshal(t, &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 1, Seed: 2}})), &good)
			goodReq = scMarshal(t, &protocol.SampleRequest{Handle: good.Handle, F32: edge.EncodeF32(randLogits(64, 1))})
		}
	}
	t.Logf("%d mutated requests: %d answered ok, %d errors", iters, answered[0], answered[1])
	if p.c.Err() != nil {
		t.Fatal(p.c.Err())
	}
}

// scRaw is the C module instantiated with wazero directly, for what
// edgehost.Instance does not show: the memory size, edge_alloc itself,
// pointers outside memory.
type scRaw struct {
	mod         api.Module
	alloc, free api.Function
}

func newSCRaw(t testing.TB, limitPages uint32) *scRaw {
	t.Helper()
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig()
	if limitPages > 0 {
		cfg = cfg.WithMemoryLimitPages(limitPages)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	t.Cleanup(func() { rt.Close(ctx) })
	mod, err := rt.Instantiate(ctx, samplerCBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	return &scRaw{mod: mod, alloc: mod.ExportedFunction("edge_alloc"), free: mod.ExportedFunction("edge_free")}
}

func (m *scRaw) pages() uint32 { return m.mod.Memory().Size() / 65536 }

func (m *scRaw) callAt(t testing.TB, fn string, ptr, n uint32) []byte {
	t.Helper()
	ctx := context.Background()
	res, err := m.mod.ExportedFunction(fn).Call(ctx, uint64(ptr), uint64(n))
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	rp, rn := uint32(res[0]>>32), uint32(res[0])
	if rp == 0 {
		t.Fatalf("%s: no response", fn)
	}
	out, ok := m.mod.Memory().Read(rp, rn)
	if !ok {
		t.Fatalf("%s: response outside memory", fn)
	}
	out = slices.Clone(out)
	if _, err := m.free.Call(ctx, uint64(rp)); err != nil {
		t.Fatal(err)
	}
	return out
}

func (m *scRaw) call(t testing.TB, fn string, req []byte) []byte {
	t.Helper()
	ctx := context.Background()
	res, err := m.alloc.Call(ctx, uint64(len(req)))
	if err != nil || res[0] == 0 {
		t.Fatalf("edge_alloc(%d) = %v, %v", len(req), res, err)
	}
	ptr := uint32(res[0])
	m.mod.Memory().Write(ptr, req)
	out := m.callAt(t, fn, ptr, uint32(len(req)))
	if _, err := m.free.Call(ctx, uint64(ptr)); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSamplerCMemory: creating and releasing 10,000 samplers (with bias
// and stop lists, each sampling once) does not grow memory, nor do
// thousands of 517 KB sampling steps; edge_alloc(0) is non-zero and an
// allocation the memory cap refuses returns 0 without trapping.
func TestSamplerCMemory(t *testing.T) {
	m := newSCRaw(t, 2048) // 128 MiB
	ctx := context.Background()
	bias := map[int32]float32{}
	for i := range 60 {
		bias[int32(i*7)] = float32(i%9) - 4
	}
	params := &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.9, TopP: 0.9, TopK: 50, Seed: 3,
		LogitBias: bias, StopTokens: []int32{5, 6, 7}, RepetitionPenalty: 1.1, LogProbs: true, TopLogProbs: 5}}
	newReq := scMarshal(t, params)
	small := edge.EncodeF32(randLogits(1000, 1))
	big := edge.EncodeF32(randLogits(129280, 2))
	cycle := func(logits []byte) {
		var h protocol.HandleReply
		if err := protocol.ParseABIResponse(m.call(t, protocol.FnSamplerNew, newReq), &h); err != nil {
			t.Fatal(err)
		}
		var rep protocol.SampleReply
		if err := protocol.ParseABIResponse(m.call(t, protocol.FnSample, scMarshal(t, &protocol.SampleRequest{Handle: h.Handle, F32: logits, History: []int32{1, 2, 3}})), &rep); err != nil {
			t.Fatal(err)
		}
		if err := protocol.ParseABIResponse(m.call(t, protocol.FnRelease, scMarshal(t, &protocol.HandleRequest{Handle: h.Handle})), &protocol.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	manyLive := func() {
		var hs []protocol.Handle
		for range 2000 {
			var h protocol.HandleReply
			if err := protocol.ParseABIResponse(m.call(t, protocol.FnSamplerNew, newReq), &h); err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h.Handle)
		}
		for _, h := range hs {
			m.call(t, protocol.FnRelease, scMarshal(t, &protocol.HandleRequest{Handle: h}))
		}
	}
	// Warm up: scratch buffers for both vocabularies, the handle table
	// and room for 2,000 live samplers.
	for range 20 {
		cycle(big)
		cycle(small)
	}
	manyLive()
	before := m.pages()
	for i := range 10000 {
		logits := small
		if i%500 == 0 {
			logits = big
		}
		cycle(logits)
	}
	manyLive()
	manyLive()
	after := m.pages()
	t.Logf("memory: %d pages before, %d after 10,000 samplers and 2×2,000 live ones", before, after)
	if after != before {
		t.Fatalf("memory grew from %d to %d pages", before, after)
	}

	res, err := m.alloc.Call(ctx, 0)
	if err != nil || res[0] == 0 {
		t.Fatalf("edge_alloc(0) = %v, %v", res, err)
	}
	m.free.Call(ctx, res[0])
	for _, n := range []uint64{200 << 20, 1<<31 - 1, 1<<32 - 1} {
		res, err = m.alloc.Call(ctx, n)
		if err != nil || uint32(res[0]) != 0 {
			t.Fatalf("edge_alloc(%d) over the cap = %v, %v; want 0", n, res, err)
		}
	}
	// Pointers outside memory get an error reply, not a trap.
	for _, fn := range []string{protocol.FnSamplerNew, protocol.FnSample, protocol.FnRelease} {
		if out := m.callAt(t, fn, 0xfffff000, 0x2000); out[0] != protocol.ABIStatusError {
			t.Fatalf("%s outside memory: %x", fn, out)
		}
	}
	cycle(small)
}

// TestSamplerCPow2Table: pow2tab.h holds exactly the table wasm/sampler
// builds (exp.go), and the module carries it.
func TestSamplerCPow2Table(t *testing.T) {
	src, err := os.ReadFile("../../wasm/plugins/sampler/pow2tab.h")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(src, []byte("POW2TAB[4096] = {"))
	if i < 0 {
		t.Fatal("no table in pow2tab.h")
	}
	lits := regexp.MustCompile(`0x[0-9a-f.]+p[+-]\d+`).FindAllString(string(src[i:]), -1)
	if len(lits) != 4096 {
		t.Fatalf("%d entries in pow2tab.h", len(lits))
	}
	var le []byte
	for j, lit := range lits {
		r := float64(float64(j)*0.6931471805599453) / 4096
		sum, term := 1.0, 1.0
		for k := 1; k < 25; k++ {
			term = float64(term*r) / float64(k)
			sum += term
		}
		v, err := strconv.ParseFloat(lit, 64)
		if err != nil || v != sum {
			t.Fatalf("POW2TAB[%d] = %s (%v), want %x", j, lit, err, sum)
		}
		le = binary.LittleEndian.AppendUint64(le, math.Float64bits(sum))
	}
	if !bytes.Contains(samplerCBytes(t), le) {
		t.Fatal("the module's data does not hold the table")
	}
}

// TestSamplerCModule: the module exports exactly the sampling functions,
// the host instruments it (SIMD passes included) and it works in a Chain
// in front of the Go edge.
func TestSamplerCModule(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{})
	m, err := r.Compile(ctx, "sampler", samplerCBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Functions(), []string{protocol.FnRelease, protocol.FnSample, protocol.FnSamplerNew}; !slices.Equal(got, want) {
		t.Fatalf("functions = %v, want %v", got, want)
	}
	if !m.Interruptible() {
		t.Fatal("the host did not instrument the sampler module")
	}
	in, err := m.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chain := edgehost.NewChain(in, goEdge(t, r))
	defer chain.Close(ctx)
	var h protocol.HandleReply
	if err := chain.Invoke(ctx, protocol.FnSamplerNew, &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, Seed: 9}}, &h); err != nil {
		t.Fatal(err)
	}
	var rep protocol.SampleReply
	if err := chain.Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: h.Handle, F32: edge.EncodeF32(randLogits(1000, 4))}, &rep); err != nil {
		t.Fatal(err)
	}
	if err := chain.Release(ctx, protocol.FnSamplerNew, h.Handle); err != nil {
		t.Fatal(err)
	}
}

// FuzzSamplerC feeds arbitrary requests to edge_sampler_new, edge_sample
// and edge_release of the C module and of the Go edge: the C module never
// traps and answers like the Go edge. Both start with sampler 1. The same
// requests also go to the native Go edge, whose code the fuzzer sees (not
// the WebAssembly modules'), so that coverage steers the inputs.
func FuzzSamplerC(f *testing.F) {
	add := func(fn uint8, v any) {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fn, b)
	}
	add(0, &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, TopK: 3, MinP: 0.1, Seed: 1, LogProbs: true, TopLogProbs: 2,
		LogitBias: map[int32]float32{2: 3}, StopTokens: []int32{1}, MaxTokens: 4, RepetitionPenalty: 1.2, PenaltyLastN: 2}})
	add(0, &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: -1}})
	add(1, &protocol.SampleRequest{Handle: 1, F32: edge.EncodeF32([]float32{1, 2, 3, float32(math.Inf(-1))}), History: []int32{1, 2}})
	add(1, &protocol.SampleRequest{Handle: 1, F16: protocol.EncodeFloat16([]float32{0.5, -1, 2}), History: []int32{9}})
	add(1, &protocol.SampleRequest{Handle: 2, F32: []byte{1, 2, 3}})
	add(2, &protocol.HandleRequest{Handle: 1})
	f.Add(uint8(1), []byte{0x82, 0xa6, 'h', 'a', 'n', 'd', 'l', 'e', 0x01, 0xa3, 'f', '3', '2', 0xc4, 0x04, 0, 0, 0x80, 0x3f})
	f.Add(uint8(0), []byte{0x81, 0xa6, 'p', 'a', 'r', 'a', 'm', 's', 0x81, 0xaa, 'l', 'o', 'g', 'i', 't', '_', 'b', 'i', 'a', 's', 0xd4, 0, 0x80})
	ctx := context.Background()
	r := newRuntime(f, edgehost.Config{})
	var p *scPair
	var native *edge.Edge
	start := func() {
		p = &scPair{c: samplerC(f, r), g: goEdge(f, r)}
		native = edge.New()
		req := scMarshal(f, &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 1, Seed: 5, LogProbs: true, TopLogProbs: 1}})
		p.call(f, protocol.FnSamplerNew, req)
		native.Call(protocol.FnSamplerNew, req)
	}
	start()
	fns := []string{protocol.FnSamplerNew, protocol.FnSample, protocol.FnRelease}
	f.Fuzz(func(t *testing.T, fn uint8, req []byte) {
		name := fns[int(fn)%len(fns)]
		native.Call(name, req)
		cr, err := p.c.Call(ctx, name, req)
		if err != nil {
			t.Fatalf("%s %x: C module failed: %v", name, req, err)
		}
		if len(cr) == 0 || cr[0] > 1 {
			t.Fatalf("%s %x: bad reply %x", name, req, cr)
		}
		gr, err := p.g.Call(ctx, name, req)
		if err != nil {
			// The Go edge died (say, out of memory on a huge request):
			// nothing to compare; start afresh to stay in step.
			start()
			return
		}
		if msg := scCompare(cr, gr); msg != "" {
			t.Fatalf("%s %x: %s", name, req, msg)
		}
	})
}

// BenchmarkSampleC is one sampling step over DeepSeek-V4's 129,280 logits
// (temperature 0.8, top-p 0.95) for normal logits (standard deviation 3)
// and sampler.PeakedLogits: the C module and the Go edge in wazero, through
// the ABI (request bytes prepared beforehand: the module's time plus the
// host's copy of 517 KB), and the Go sampler natively.
func BenchmarkSampleC(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, edgehost.Config{})
	c, g := samplerC(b, r), goEdge(b, r)
	params := protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, Seed: 1}
	newReq := scMarshal(b, &protocol.SamplerNew{Params: params})
	for _, kind := range []struct {
		name   string
		logits []float32
	}{{"random", randLogits(129280, 5)}, {"peaked", sampler.PeakedLogits(129280, 5)}} {
		for _, mod := range []struct {
			name string
			in   *edgehost.Instance
		}{{"c", c}, {"goedge", g}} {
			b.Run(kind.name+"/"+mod.name, func(b *testing.B) {
				var h protocol.HandleReply
				resp, err := mod.in.Call(ctx, protocol.FnSamplerNew, newReq)
				if err != nil || protocol.ParseABIResponse(resp, &h) != nil {
					b.Fatal(err)
				}
				req := scMarshal(b, &protocol.SampleRequest{Handle: h.Handle, F32: edge.EncodeF32(kind.logits)})
				for b.Loop() {
					resp, err := mod.in.Call(ctx, protocol.FnSample, req)
					if err != nil || resp[0] != protocol.ABIStatusOK {
						b.Fatalf("%x %v", resp, err)
					}
				}
			})
		}
		b.Run(kind.name+"/native", func(b *testing.B) {
			s, err := sampler.New(scNative(params))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.Sample(kind.logits, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSamplerCTiming (EDGESEEK_SAMPLER_C_TIMING=rounds) times one step
// over 129,280 logits (temperature 0.8, top-p 0.95) as BenchmarkSampleC
// does, in interleaved rounds of 10 steps so that a machine whose speed
// drifts treats every contender alike: the C module, another build of it
// (EDGESEEK_SAMPLER_C_ALT=path, say the scalar one), the Go edge in
// wazero and the native Go sampler. It reports the best and the median
// round per step. EDGESEEK_SAMPLER_C_TIMING_MORE=1 adds greedy, T = 0.8
// without top-p, and top-k 40 with 5 top log-probabilities.
func TestSamplerCTiming(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("EDGESEEK_SAMPLER_C_TIMING"))
	if rounds <= 0 {
		t.Skip("set EDGESEEK_SAMPLER_C_TIMING=rounds")
	}
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{})
	type contender struct {
		name string
		in   *edgehost.Instance
	}
	cs := []contender{{"c", samplerC(t, r)}}
	if p := os.Getenv("EDGESEEK_SAMPLER_C_ALT"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, contender{"c-alt", samplerCOf(t, r, b)})
	}
	cs = append(cs, contender{"goedge", goEdge(t, r)})
	type kindT struct {
		name   string
		logits []float32
		params protocol.SamplingParams
	}
	random, peaked := randLogits(129280, 5), sampler.PeakedLogits(129280, 5)
	params := protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, Seed: 1}
	kinds := []kindT{{"random", random, params}, {"peaked", peaked, params}}
	if os.Getenv("EDGESEEK_SAMPLER_C_TIMING_MORE") != "" {
		kinds = append(kinds,
			kindT{"greedy", random, protocol.SamplingParams{}},
			kindT{"t0.8", random, protocol.SamplingParams{Temperature: 0.8, Seed: 1}},
			kindT{"topk40lp", random, protocol.SamplingParams{Temperature: 0.8, TopK: 40, LogProbs: true, TopLogProbs: 5, Seed: 1}})
	}
	for _, kind := range kinds {
		newReq := scMarshal(t, &protocol.SamplerNew{Params: kind.params})
		steps := make([]func(), 0, len(cs)+1)
		var replies [][]byte
		for i, c := range cs {
			var h protocol.HandleReply
			resp, err := c.in.Call(ctx, protocol.FnSamplerNew, newReq)
			if err != nil || protocol.ParseABIResponse(resp, &h) != nil {
				t.Fatal(err)
			}
			req := scMarshal(t, &protocol.SampleRequest{Handle: h.Handle, F32: edge.EncodeF32(kind.logits)})
			replies = append(replies, nil)
			steps = append(steps, func() {
				resp, err := c.in.Call(ctx, protocol.FnSample, req)
				if err != nil || resp[0] != protocol.ABIStatusOK {
					t.Fatalf("%s: %x %v", c.name, resp, err)
				}
				replies[i] = resp
			})
		}
		s, err := sampler.New(scNative(kind.params))
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, func() {
			if _, err := s.Sample(kind.logits, nil); err != nil {
				t.Fatal(err)
			}
		})
		names := []string{}
		for _, c := range cs {
			names = append(names, c.name)
		}
		names = append(names, "native")
		times := make([][]time.Duration, len(steps))
		for _, f := range steps { // warm up (the first step grows memory)
			f()
		}
		for range rounds {
			for j, f := range steps {
				start := time.Now()
				for range 10 {
					f()
				}
				times[j] = append(times[j], time.Since(start)/10)
			}
			for j := 1; j < len(cs); j++ { // the same generator state: the same replies
				if !bytes.Equal(replies[j], replies[0]) {
					t.Fatalf("%s and %s differ: %x %x", cs[0].name, cs[j].name, replies[0], replies[j])
				}
			}
		}
		for j, ts := range times {
			slices.Sort(ts)
			t.Logf("%s/%-7s best %.3f ms  median %.3f ms", kind.name, names[j], ms(ts[0]), ms(ts[len(ts)/2]))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
