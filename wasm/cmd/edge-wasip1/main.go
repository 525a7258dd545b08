//go:build wasip1

// Command edge-wasip1 is the edge module as a WASI preview 1 reactor
// (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared). It exports the ABI
// described in wasm/ABI.md; the host must call _initialize before any
// other export.
package main

import (
	"runtime"
	"unsafe"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
)

func main() {}

var (
	instance = edge.New()
	// pinned keeps every buffer handed to the host alive until edge_free,
	// keyed by its address in linear memory.
	pinned = map[uint32][]byte{}
	// requests marks the pinned buffers that edge_alloc made.
	requests = map[uint32]bool{}
	// spare is a freed request buffer kept for the next edge_alloc: the
	// host sends requests of similar sizes (a sampling step's 517 KB of
	// logits every token), and reusing the buffer saves zeroing a new one
	// and the garbage collections its allocation would trigger. Nothing
	// keeps pointers into a request (protocol.Unmarshal copies), and the
	// host overwrites the bytes it asked for.
	spare []byte
)

// spareMin is the smallest request buffer worth keeping as spare.
const spareMin = 64 << 10

func pin(b []byte) uint32 {
	if len(b) == 0 {
		b = make([]byte, 1)
	}
	p := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	pinned[p] = b
	return p
}

//go:wasmexport edge_abi_version
func abiVersion() uint32 { return protocol.ABIVersion }

//go:wasmexport edge_alloc
func alloc(size uint32) uint32 {
	if size > protocol.MaxFrameSize {
		return 0
	}
	var b []byte
	if size >= spareMin && uint32(cap(spare)) >= size && uint32(cap(spare))/2 <= size {
		b, spare = spare[:size], nil
	} else {
		b = make([]byte, size)
	}
	p := pin(b)
	requests[p] = true
	return p
}

//go:wasmexport edge_free
func free(ptr uint32) {
	if requests[ptr] {
		delete(requests, ptr)
		if b := pinned[ptr]; cap(b) >= spareMin && cap(b) > cap(spare) {
			spare = b[:cap(b)]
		}
	}
	delete(pinned, ptr)
}

// call runs fn on the request at [ptr, ptr+n), which must lie inside a
// buffer from edge_alloc, and returns the pinned response as ptr<<32 | len.
func call(fn string, ptr, n uint32) uint64 {
	// Let other goroutines run first: the garbage collector's background
	// mark workers are goroutines, and in a reactor nothing else schedules
	// them. Without this a collection that started never finished, and the
	// heap grew with every call's garbage until the memory cap (a 1 GiB
	// instance after ~15k tokenize calls of 2 KB pieces).
	runtime.Gosched()
	var resp []byte
	if b, ok := pinned[ptr]; !ok || uint64(n) > uint64(len(b)) {
		resp = protocol.ABIErrorResponse(protocol.CodeInvalid, "edge: request is not inside a buffer from edge_alloc")
	} else {
		resp = instance.Call(fn, b[:n])
	}
	return uint64(pin(resp))<<32 | uint64(len(resp))
}

//go:wasmexport edge_session_new
func sessionNew(ptr, n uint32) uint64 { return call(protocol.FnSessionNew, ptr, n) }

//go:wasmexport edge_tokenize
func tokenize(ptr, n uint32) uint64 { return call(protocol.FnTokenize, ptr, n) }

//go:wasmexport edge_detokenize
func detokenize(ptr, n uint32) uint64 { return call(protocol.FnDetokenize, ptr, n) }

//go:wasmexport edge_stream_new
func streamNew(ptr, n uint32) uint64 { return call(protocol.FnStreamNew, ptr, n) }

//go:wasmexport edge_stream_push
func streamPush(ptr, n uint32) uint64 { return call(protocol.FnStreamPush, ptr, n) }

//go:wasmexport edge_stream_flush
func streamFlush(ptr, n uint32) uint64 { return call(protocol.FnStreamFlush, ptr, n) }

//go:wasmexport edge_chat_encode
func chatEncode(ptr, n uint32) uint64 { return call(protocol.FnChatEncode, ptr, n) }

//go:wasmexport edge_sampler_new
func samplerNew(ptr, n uint32) uint64 { return call(protocol.FnSamplerNew, ptr, n) }

//go:wasmexport edge_sample
func sample(ptr, n uint32) uint64 { return call(protocol.FnSample, ptr, n) }

//go:wasmexport edge_engram_new
func engramNew(ptr, n uint32) uint64 { return call(protocol.FnEngramNew, ptr, n) }

//go:wasmexport edge_engram
func engram(ptr, n uint32) uint64 { return call(protocol.FnEngram, ptr, n) }

//go:wasmexport edge_release
func release(ptr, n uint32) uint64 { return call(protocol.FnRelease, ptr, n) }

//go:wasmexport edge_tokenizer_image
func tokenizerImage(ptr, n uint32) uint64 { return call(protocol.FnTokenizerImage, ptr, n) }
