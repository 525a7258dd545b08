package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

// textCodec is the tokenizer as the commands use it: the edge module in
// wazero (as the host runs it) or the Go package directly.
type textCodec interface {
	encode(text string) ([]int, error)
	decode(ids []int) (string, error)
	close()
}

type nativeCodec struct{ t *tokenizer.Tokenizer }

func (n nativeCodec) encode(s string) ([]int, error)   { return n.t.Encode(s) }
func (n nativeCodec) decode(ids []int) (string, error) { return n.t.Decode(ids, false) }
func (n nativeCodec) close()                           {}

type wasmCodec struct {
	ctx   context.Context
	rt    *edgehost.Runtime
	chain *edgehost.Chain // the tokenizer plugin, if any, in front of the edge
	h     protocol.Handle
}

func (w *wasmCodec) encode(s string) ([]int, error) {
	var rep protocol.IDsReply
	if err := w.chain.Invoke(w.ctx, protocol.FnTokenize, protocol.TextRequest{Handle: w.h, Text: s}, &rep); err != nil {
		return nil, err
	}
	out := make([]int, len(rep.IDs))
	for i, v := range rep.IDs {
		out[i] = int(v)
	}
	return out, nil
}

func (w *wasmCodec) decode(ids []int) (string, error) {
	req := protocol.IDsRequest{Handle: w.h, IDs: make([]int32, len(ids))}
	for i, v := range ids {
		req.IDs[i] = int32(v)
	}
	var rep protocol.TextReply
	if err := w.chain.Invoke(w.ctx, protocol.FnDetokenize, req, &rep); err != nil {
		return "", err
	}
	return rep.Text, nil
}

func (w *wasmCodec) close() {
	w.chain.Close(w.ctx)
	w.rt.Close(w.ctx)
}

// openCodec loads a tokenizer.json natively or into a fresh edge instance
// (the embedded module, or the --edge one), with the tokenizer plugin the
// host would put in front of it (plugin: builtin, edge or a file; empty:
// builtin with the embedded edge, none with --edge).
func openCodec(path string, native bool, edge, plugin string) (textCodec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if native {
		t, err := tokenizer.Load(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nativeCodec{t}, nil
	}
	ctx := context.Background()
	rt, err := edgehost.New(ctx, edgehost.Config{})
	if err != nil {
		return nil, err
	}
	mod, err := rt.CompileEdge(ctx, edge)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	if plugin == "" && edge != "" {
		plugin = edgehost.TokenizerEdge
	}
	tmod, err := rt.CompileTokenizer(ctx, plugin)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	var insts []*edgehost.Instance
	for _, m := range []*edgehost.Module{tmod, mod} {
		if m == nil {
			continue
		}
		in, err := m.Instantiate(ctx)
		if err != nil {
			rt.Close(ctx)
			return nil, err
		}
		insts = append(insts, in)
	}
	chain := edgehost.NewChain(insts...)
	var info protocol.SessionInfo // the chain attaches the session to the plugin
	if err := chain.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: data}, &info); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &wasmCodec{ctx: ctx, rt: rt, chain: chain, h: info.Handle}, nil
}

// codecFlags are the tokenizer flags of tokenize and detokenize.
type codecFlags struct {
	path, edge, plugin *string
	native             *bool
}

func tokenizerFlags(fs *flag.FlagSet) codecFlags {
	return codecFlags{
		path:   fs.String("tokenizer", "", "tokenizer.json"),
		native: fs.Bool("native", false, "use the Go packages directly instead of the edge module in wazero"),
		edge:   fs.String("edge", "", "edge module (.wasm) to use instead of the embedded one"),
		plugin: fs.String("tokenizer-plugin", "", "who encodes in wazero: builtin (the embedded C tokenizer, default with the embedded edge), edge (the edge module, default with --edge), or a tokenizer plugin (.wasm)"),
	}
}

func (f codecFlags) open() (textCodec, error) {
	return openCodec(*f.path, *f.native, *f.edge, *f.plugin)
}

func cmdTokenize(args []string) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	cf := tokenizerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cf.path == "" {
		return fmt.Errorf("--tokenizer is required")
	}
	text, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	if !utf8.Valid(text) {
		return fmt.Errorf("standard input is not valid UTF-8")
	}
	c, err := cf.open()
	if err != nil {
		return err
	}
	defer c.close()
	ids, err := c.encode(string(text))
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []int{}
	}
	out, _ := json.Marshal(ids)
	fmt.Println(string(out))
	return nil
}

func cmdDetokenize(args []string) error {
	fs := flag.NewFlagSet("detokenize", flag.ContinueOnError)
	cf := tokenizerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cf.path == "" {
		return fmt.Errorf("--tokenizer is required")
	}
	var ids []int
	if err := json.NewDecoder(os.Stdin).Decode(&ids); err != nil {
		return fmt.Errorf("standard input: want a JSON array of token ids: %w", err)
	}
	c, err := cf.open()
	if err != nil {
		return err
	}
	defer c.close()
	text, err := c.decode(ids)
	if err != nil {
		return err
	}
	fmt.Print(text)
	return nil
}
