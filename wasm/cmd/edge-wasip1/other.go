//go:build !wasip1

// Command edge-wasip1 is the edge module as a WASI preview 1 reactor; build
// it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (see
// wasm/build.sh). On other targets it only says so.
package main

import "os"

func main() {
	os.Stderr.WriteString("edge-wasip1: build with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (wasm/build.sh)\n")
	os.Exit(2)
}
