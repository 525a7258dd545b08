//go:build !(js && wasm)

package main

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
)

// script loads build/wasm/edge.wasm in Node with Go's wasm_exec.js and
// runs the hex-encoded calls given as "name:hex" arguments, printing one
// hex response per line.
const script = `
globalThis.require = require;
globalThis.fs = require("fs");
globalThis.path = require("path");
globalThis.TextEncoder = require("util").TextEncoder;
globalThis.TextDecoder = require("util").TextDecoder;
globalThis.crypto ??= require("crypto");
require(process.argv[1] + "/wasm_exec.js");
const go = new Go();
globalThis.edgeseekReady = () => {
  const out = [String(edgeseek.abiVersion), edgeseek.functions.join(",")];
  for (const arg of process.argv.slice(2)) {
    const [name, hex] = arg.split(":");
    out.push(Buffer.from(edgeseek.call(name, Uint8Array.from(Buffer.from(hex, "hex")))).toString("hex"));
  }
  out.push(Buffer.from(edgeseek.call("edge_tokenize", "not bytes")).toString("hex"));
  console.log(out.join("\n"));
  process.exit(0);
};
WebAssembly.instantiate(fs.readFileSync(process.argv[1] + "/edge.wasm"), go.importObject).then(r => go.run(r.instance));
`

func TestNodeSmoke(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "../../../build/wasm")
	if _, err := os.Stat(filepath.Join(dir, "edge.wasm")); err != nil {
		t.Fatalf("%v: run wasm/build.sh first", err)
	}
	dir, _ = filepath.Abs(dir)
	enc := func(v any) string {
		b, err := protocol.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}
	args := []string{"-e", script, dir,
		protocol.FnSamplerNew + ":" + enc(&protocol.SamplerNew{}),
		protocol.FnSample + ":" + enc(&protocol.SampleRequest{Handle: 1, F32: edge.EncodeF32([]float32{0.5, 3, -1, 2})}),
	}
	out, err := exec.Command(node, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 {
		t.Fatalf("node printed %q", out)
	}
	if lines[0] != "1" || lines[1] != strings.Join(edge.Functions(), ",") {
		t.Fatalf("abiVersion/functions = %q %q", lines[0], lines[1])
	}
	decode := func(s string, rep any) error {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return protocol.ParseABIResponse(b, rep)
	}
	var h protocol.HandleReply
	if err := decode(lines[2], &h); err != nil || h.Handle != 1 {
		t.Fatalf("sampler_new = %+v, %v", h, err)
	}
	var s protocol.SampleReply
	if err := decode(lines[3], &s); err != nil || s.ID != 1 {
		t.Fatalf("greedy sample = %+v, %v; want id 1", s, err)
	}
	var pe *protocol.Error
	if err := decode(lines[4], &protocol.Empty{}); err == nil || !strings.Contains(err.Error(), "Uint8Array") {
		t.Fatalf("bad call error = %v (%T)", err, pe)
	}
}
