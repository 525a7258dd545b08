package protocol

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestIDsReplyEncoding: the direct IDsReply encoder decodes, strictly and
// with the plain library, to the value encoded, for every container size
// class and every integer width, and is never longer than the library's.
func TestIDsReplyEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	edge := []int32{0, 1, 127, 128, 255, 256, 65535, 65536, 129279, math.MaxInt32, -1, -32, -33, math.MinInt32}
	for _, n := range []int{-1, 0, 1, 15, 16, 17, 65535, 65536, 70000} {
		var ids []int32
		if n >= 0 {
			ids = make([]int32, n)
			for i := range ids {
				if i%3 == 0 {
					ids[i] = edge[rng.IntN(len(edge))]
				} else {
					ids[i] = int32(rng.IntN(129280))
				}
			}
		}
		in := &IDsReply{IDs: ids}
		b, err := Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		lib, err := msgpack.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > len(lib) {
			t.Errorf("n=%d: %d bytes, the library's %d", n, len(b), len(lib))
		}
		var strict, plain IDsReply
		if err := Unmarshal(b, &strict); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if err := msgpack.Unmarshal(b, &plain); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		for _, got := range []IDsReply{strict, plain} {
			if !slices.Equal(got.IDs, ids) || (got.IDs == nil) != (ids == nil) {
				t.Fatalf("n=%d: decoded %d ids (nil %v), want %d (nil %v)", n, len(got.IDs), got.IDs == nil, len(ids), ids == nil)
			}
		}
		resp, err := ABIOKResponse(in)
		if err != nil {
			t.Fatal(err)
		}
		if resp[0] != ABIStatusOK || string(resp[1:]) != string(b) {
			t.Fatalf("n=%d: ABIOKResponse is not the status byte and Marshal's bytes", n)
		}
		var viaABI IDsReply
		if err := ParseABIResponse(resp, &viaABI); err != nil || !slices.Equal(viaABI.IDs, ids) {
			t.Fatalf("n=%d: ParseABIResponse: %v", n, err)
		}
	}
}

// checkIDsDecode: whenever the direct IDsReply decoder accepts b, the
// library's strict path (checkWellFormed and msgpack) accepts it too and
// gives the same ids, nil-ness included.
func checkIDsDecode(t *testing.T, b []byte) {
	ids, ok := decodeIDsReply(b)
	if !ok {
		return
	}
	var lib IDsReply
	if err := checkWellFormed(b); err != nil { // also: one value, nothing after it
		t.Fatalf("%x: direct decoder accepts what checkWellFormed rejects: %v", b, err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields(true)
	if err := dec.Decode(&lib); err != nil {
		t.Fatalf("%x: direct decoder accepts what the library rejects: %v", b, err)
	}
	if !slices.Equal(ids, lib.IDs) || (ids == nil) != (lib.IDs == nil) {
		t.Fatalf("%x: direct %v (nil %v), library %v (nil %v)", b, ids, ids == nil, lib.IDs, lib.IDs == nil)
	}
}

// TestIDsReplyDecoding: the encodings the host meets (this package's and
// the library's, every width) take the direct path and agree with the
// library; odd ones agree too or fall back.
func TestIDsReplyDecoding(t *testing.T) {
	cases := [][]byte{
		{0x81, 0xa3, 'i', 'd', 's', 0xc0},
		{0x81, 0xa3, 'i', 'd', 's', 0x90},
		{0x81, 0xa3, 'i', 'd', 's', 0x93, 0x01, 0xff, 0xd0, 0x80},
		{0x81, 0xa3, 'i', 'd', 's', 0xdc, 0x00, 0x02, 0xcc, 0xff, 0xcd, 0xff, 0xff},
		{0x81, 0xa3, 'i', 'd', 's', 0xdd, 0, 0, 0, 2, 0xce, 0x7f, 0xff, 0xff, 0xff, 0xd2, 0x80, 0, 0, 0},
		{0x81, 0xa3, 'i', 'd', 's', 0x91, 0xce, 0x80, 0, 0, 0}, // 2^31: out of int32, falls back
		{0x81, 0xa3, 'i', 'd', 's', 0x91, 0x01, 0x00},          // trailing byte
		{0x81, 0xa3, 'i', 'd', 's', 0x92, 0x01},                // short
	}
	for _, ids := range [][]int32{nil, {}, {0, 127, 128, 65536, -5, math.MaxInt32, math.MinInt32}} {
		b, _ := Marshal(&IDsReply{IDs: ids})
		lib, _ := msgpack.Marshal(&IDsReply{IDs: ids})
		cases = append(cases, b, lib)
	}
	for i, b := range cases[:5] {
		if _, ok := decodeIDsReply(b); !ok {
			t.Errorf("case %d (%x) did not take the direct path", i, b)
		}
	}
	for _, b := range cases {
		checkIDsDecode(t, b)
		var r IDsReply
		if _, ok := decodeIDsReply(b); ok {
			if err := Unmarshal(b, &r); err != nil {
				t.Fatalf("%x: %v", b, err)
			}
		}
	}
	for _, b := range cases[5:8] {
		if _, ok := decodeIDsReply(b); ok {
			t.Errorf("%x: taken by the direct path", b)
		}
	}
}

func FuzzIDsReplyDecoding(f *testing.F) {
	for _, ids := range [][]int32{nil, {}, {1, 200, 70000, -3}} {
		b, _ := Marshal(&IDsReply{IDs: ids})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkIDsDecode(t, b) })
}
