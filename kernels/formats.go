package kernels

import (
	"math"

	"github.com/x448/float16"
)

// fp4Table maps an e2m1 nibble to its value; bit 3 is the sign (code 8 is -0,
// which is +0 numerically).
var fp4Table = [16]float32{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}

// FP4Value returns the value of an e2m1 code (0..15).
func FP4Value(code uint8) float32 { return fp4Table[code&15] }

// e4m3Table holds the value of every e4m3fn byte; 0x7F and 0xFF are NaN.
var e4m3Table = func() (t [256]float32) {
	for b := 0; b < 256; b++ {
		t[b] = e4m3Decode(uint8(b))
	}
	return
}()

func e4m3Decode(b uint8) float32 {
	sign := float32(1)
	if b&0x80 != 0 {
		sign = -1
	}
	exp := int(b>>3) & 0xF
	man := float32(b & 7)
	if exp == 0xF && b&7 == 7 {
		return float32(math.NaN())
	}
	if exp == 0 {
		return sign * man / 8 * float32(math.Ldexp(1, -6))
	}
	return sign * (1 + man/8) * float32(math.Ldexp(1, exp-7))
}

// E4M3ToF32 decodes one float8 e4m3fn byte.
func E4M3ToF32(b uint8) float32 { return e4m3Table[b] }

// E8M0ToF32 decodes an unsigned exponent-only scale: 2^(b-127); 255 is NaN.
func E8M0ToF32(b uint8) float32 {
	if b == 255 {
		return float32(math.NaN())
	}
	if b == 0 {
		return math.Float32frombits(1 << 22) // 2^-127 is subnormal in float32
	}
	return math.Float32frombits(uint32(b) << 23)
}

// BF16ToF32 widens a bfloat16 bit pattern.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds to the nearest bfloat16, ties to even (NaN stays NaN).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// RoundBF16 rounds every element of x to the nearest bfloat16 value, as the
// reference does whenever it stores an activation in bf16.
func RoundBF16(x []float32) {
	for i, v := range x {
		x[i] = BF16ToF32(F32ToBF16(v))
	}
}

// F16ToF32 widens an IEEE half bit pattern.
func F16ToF32(h uint16) float32 { return float16.Frombits(h).Float32() }

// F32ToE4M3 rounds to the nearest e4m3fn value (ties to even), saturating at
// ±448. It returns the byte encoding.
func F32ToE4M3(f float32) uint8 {
	if f != f {
		return 0x7F
	}
	var sign uint8
	if math.Signbit(float64(f)) {
		sign = 0x80
		f = -f
	}
	if f >= 448 {
		return sign | 0x7E
	}
	// Smallest normal is 2^-6; subnormal spacing 2^-9.
	if f < float32(math.Ldexp(1, -6)) {
		q := roundEven(float64(f) * 512) // units of 2^-9
		return sign | uint8(q)           // q==8 encodes the smallest normal correctly
	}
	e := math.Floor(math.Log2(float64(f)))
	m := float64(f)/math.Ldexp(1, int(e)) - 1 // [0,1)
	q := roundEven(m * 8)
	if q == 8 {
		q = 0
		e++
	}
	if e > 8 || (e == 8 && q > 6) {
		return sign | 0x7E
	}
	return sign | uint8(int(e)+7)<<3 | uint8(q)
}

func roundEven(x float64) float64 { return math.RoundToEven(x) }

// RoundE4M3 rounds a value to the nearest e4m3fn value (saturating).
func RoundE4M3(f float32) float32 {
	b := math.Float32bits(f)
	sign := b & 0x80000000
	a := b &^ 0x80000000
	switch {
	case a > 0x7f800000: // NaN
		return f
	case a >= 0x43e00000: // ≥ 448: saturate
		return math.Float32frombits(sign | 0x43e00000)
	case a < 0x3c800000: // below 2^-6: subnormal grid of 2^-9
		q := float32(math.RoundToEven(float64(math.Float32frombits(a)) * 512))
		return math.Float32frombits(sign | math.Float32bits(q/512))
	}
	// Normal: keep 3 mantissa bits, round to nearest even on the dropped 20.
	a += 0x7ffff + (a>>20)&1
	a &^= 0xfffff
	return math.Float32frombits(sign | a)
}

// RoundE2M1 rounds a value to the nearest FP4 e2m1 value, ties to the even
// code, clamping to ±6.
func RoundE2M1(f float32) float32 {
	a := math.Abs(float64(f))
	var q float64
	switch {
	case a >= 6:
		q = 6
	case a >= 4: // grid step 2 in [4,6]
		q = 4 + 2*math.RoundToEven((a-4)/2)
	case a >= 2: // grid step 1 in [2,4]
		q = 2 + math.RoundToEven(a-2)
	default: // grid step 0.5 in [0,2]
		q = 0.5 * math.RoundToEven(a*2)
	}
	if f < 0 {
		return float32(-q)
	}
	return float32(q)
}

// pow2Ceil returns 2^ceil(log2(v)) for v > 0, computed from the float32 bit
// pattern exactly as the reference does (exponent, plus one if any mantissa
// bit is set).
func pow2Ceil(v float32) float32 {
	b := math.Float32bits(v)
	e := int(b>>23&0xFF) - 127
	if b&0x7FFFFF != 0 {
		e++
	}
	return float32(math.Ldexp(1, e))
}

// QuantDequantFP8 simulates the reference's FP8 activation quantisation in
// place: blocks of `block` consecutive values share a power-of-two scale
// 2^ceil(log2(amax/448)) and are rounded to e4m3. A trailing partial block is
// quantised on its own.
func QuantDequantFP8(x []float32, block int) {
	for lo := 0; lo < len(x); lo += block {
		hi := min(lo+block, len(x))
		amax := float32(1e-4)
		for _, v := range x[lo:hi] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		s := pow2Ceil(amax / 448)
		for i := lo; i < hi; i++ {
			v := x[i] / s
			v = min(max(v, -448), 448)
			x[i] = RoundE4M3(v) * s
		}
	}
}

// QuantDequantFP4 simulates FP4 e2m1 quantisation with power-of-two (e8m0)
// block scales in place, as the reference does for indexer queries and keys.
func QuantDequantFP4(x []float32, block int) {
	minAmax := 6 * float32(math.Ldexp(1, -126))
	for lo := 0; lo < len(x); lo += block {
		hi := min(lo+block, len(x))
		amax := minAmax
		for _, v := range x[lo:hi] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		s := pow2Ceil(amax / 6)
		for i := lo; i < hi; i++ {
			x[i] = RoundE2M1(min(max(x[i]/s, -6), 6)) * s
		}
	}
}

// QuantDequantFP4E4M3 simulates FP4 e2m1 quantisation whose block scales are
// themselves e4m3 values (V4.1 compressed KV, blocks of 16).
func QuantDequantFP4E4M3(x []float32, block int) {
	minAmax := 6 * float32(math.Ldexp(1, -9))
	for lo := 0; lo < len(x); lo += block {
		hi := min(lo+block, len(x))
		amax := minAmax
		for _, v := range x[lo:hi] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		s := RoundE4M3(amax / 6)
		for i := lo; i < hi; i++ {
			x[i] = RoundE2M1(min(max(x[i]/s, -6), 6)) * s
		}
	}
}
