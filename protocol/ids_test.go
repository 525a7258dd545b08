package protocol

import (
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
