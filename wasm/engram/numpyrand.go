package engram

import (
	"fmt"
	"math/bits"
)

// This file ports the parts of NumPy's random module that the V4.1 Engram
// hash multipliers depend on: SeedSequence (entropy mixing), PCG64 (the
// default_rng bit generator, XSL-RR output) and Generator.integers for
// int64 with Lemire's bounded method. Only 64-bit integer arithmetic is
// used, so results are identical on every target. Checked against NumPy
// 2.3.5 for several layer ids (testdata/engram/expected.json).

// seedSequenceState returns SeedSequence(entropy).generate_state(4, uint64)
// for a non-negative integer entropy and no spawn key.
func seedSequenceState(entropy uint64) [4]uint64 {
	const (
		initA    = 0x43b0d7e5
		multA    = 0x931e8875
		initB    = 0x8b51f9dd
		multB    = 0x58f38ded
		mixMultL = 0xca01f9dd
		mixMultR = 0x4973f715
		poolSize = 4
	)
	// The integer is split into little-endian 32-bit words (at least one).
	words := []uint32{uint32(entropy)}
	if hi := uint32(entropy >> 32); hi != 0 {
		words = append(words, hi)
	}
	hashConst := uint32(initA)
	hashmix := func(v uint32) uint32 {
		v ^= hashConst
		hashConst *= multA
		v *= hashConst
		return v ^ v>>16
	}
	mix := func(x, y uint32) uint32 {
		r := mixMultL*x - mixMultR*y
		return r ^ r>>16
	}
	var pool [poolSize]uint32
	for i := range pool {
		var w uint32
		if i < len(words) {
			w = words[i]
		}
		pool[i] = hashmix(w)
	}
	for src := range pool {
		for dst := range pool {
			if src != dst {
				pool[dst] = mix(pool[dst], hashmix(pool[src]))
			}
		}
	}
	// (words beyond the pool size cannot occur for a 64-bit entropy)
	var out [4]uint64
	hb := uint32(initB)
	for i := range 8 {
		v := pool[i%poolSize]
		v ^= hb
		hb *= multB
		v *= hb
		v ^= v >> 16
		out[i/2] |= uint64(v) << (32 * uint(i%2))
	}
	return out
}

// pcg64 is NumPy's PCG64 state: a 128-bit LCG with XSL-RR output.
type pcg64 struct {
	hi, lo       uint64 // state
	incHi, incLo uint64 // increment (odd)
}

const (
	pcgMultHi = 0x2360ED051FC65DA4
	pcgMultLo = 0x4385DF649FCCF645
)

func (p *pcg64) step() {
	h, l := bits.Mul64(p.lo, pcgMultLo)
	h += p.hi*pcgMultLo + p.lo*pcgMultHi
	var c uint64
	p.lo, c = bits.Add64(l, p.incLo, 0)
	p.hi, _ = bits.Add64(h, p.incHi, c)
}

// newPCG64 seeds like numpy.random.default_rng(seed).
func newPCG64(seed uint64) *pcg64 {
	s := seedSequenceState(seed)
	p := &pcg64{}
	// increment = (initseq << 1) | 1 with initseq = s[2]:s[3] (high:low).
	p.incHi = s[2]<<1 | s[3]>>63
	p.incLo = s[3]<<1 | 1
	p.step()
	var c uint64
	p.lo, c = bits.Add64(p.lo, s[1], 0)
	p.hi, _ = bits.Add64(p.hi, s[0], c)
	p.step()
	return p
}

// next64 advances the state and returns the XSL-RR output.
func (p *pcg64) next64() uint64 {
	p.step()
	return bits.RotateLeft64(p.hi^p.lo, -int(p.hi>>58))
}

// boundedInt returns NumPy's Generator.integers(0, high) for high > 2^32
// (Lemire's method with rejection, 64-bit path).
func (p *pcg64) boundedInt(high uint64) uint64 {
	hi, lo := bits.Mul64(p.next64(), high)
	if lo < high {
		threshold := -high % high
		for lo < threshold {
			hi, lo = bits.Mul64(p.next64(), high)
		}
	}
	return hi
}

// Multipliers returns the Engram hash multipliers of a layer: NumPy's
// default_rng(10007·layerID) draws maxNgram integers in [0, bound) with
// bound = ⌊⌊INT64_MAX/compressedVocab⌋/2⌋, and each multiplier is 2r+1.
// Only the range where NumPy uses the 64-bit method (bound > 2^32, i.e.
// compressedVocab below about 2^30) is ported; larger values are an error.
func Multipliers(layerID, compressedVocab, maxNgram int) ([]int64, error) {
	if layerID < 0 || compressedVocab <= 0 || maxNgram < 1 || maxNgram > 64 {
		return nil, fmt.Errorf("engram: invalid multiplier arguments (layer %d, compressed vocab %d, max ngram %d)", layerID, compressedVocab, maxNgram)
	}
	bound := uint64(1<<63-1) / uint64(compressedVocab) / 2
	if bound-1 <= 0xFFFFFFFF {
		return nil, fmt.Errorf("engram: compressed vocab %d too large for the ported NumPy path", compressedVocab)
	}
	p := newPCG64(10007 * uint64(layerID))
	m := make([]int64, maxNgram)
	for i := range m {
		m[i] = int64(2*p.boundedInt(bound) + 1)
	}
	return m, nil
}
