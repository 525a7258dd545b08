//go:build js && wasm

// Command edge-js is the edge module for browsers (GOOS=js GOARCH=wasm),
// run with Go's wasm_exec.js. It installs globalThis.edgeseek:
//
//	edgeseek.abiVersion            // number, protocol.ABIVersion
//	edgeseek.functions             // array of ABI function names
//	edgeseek.call(name, request)   // Uint8Array → Uint8Array response
//
// Requests and responses are the msgpack messages of wasm/ABI.md (status
// byte + msgpack). When ready it calls globalThis.edgeseekReady() if that
// exists. Calls are synchronous.
package main

import (
	"syscall/js"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
)

func main() {
	instance := edge.New()
	u8 := js.Global().Get("Uint8Array")
	callFn := js.FuncOf(func(this js.Value, args []js.Value) any {
		var resp []byte
		switch {
		case len(args) != 2 || args[0].Type() != js.TypeString || !args[1].InstanceOf(u8):
			resp = protocol.ABIErrorResponse(protocol.CodeInvalid, "edgeseek.call(name, Uint8Array)")
		case args[1].Length() > protocol.MaxFrameSize:
			resp = protocol.ABIErrorResponse(protocol.CodeInvalid, "edgeseek.call: request over the frame limit")
		default:
			req := make([]byte, args[1].Length())
			js.CopyBytesToGo(req, args[1])
			resp = instance.Call(args[0].String(), req)
		}
		out := u8.New(len(resp))
		js.CopyBytesToJS(out, resp)
		return out
	})
	var fns []any
	for _, f := range edge.Functions() {
		fns = append(fns, f)
	}
	obj := js.Global().Get("Object").New()
	obj.Set("abiVersion", protocol.ABIVersion)
	obj.Set("functions", js.ValueOf(fns))
	obj.Set("call", callFn)
	js.Global().Set("edgeseek", obj)
	if ready := js.Global().Get("edgeseekReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {}
}
