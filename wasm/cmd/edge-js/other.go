//go:build !(js && wasm)

// Command edge-js is the edge module for browsers; build it with GOOS=js
// GOARCH=wasm (see wasm/build.sh). On other targets it only says so.
package main

import "os"

func main() {
	os.Stderr.WriteString("edge-js: build with GOOS=js GOARCH=wasm (wasm/build.sh)\n")
	os.Exit(2)
}
