// Command edgeseek is EdgeSeek's single binary: it serves models, runs them
// from the terminal, writes tiny checkpoints, dumps logits and benchmarks.
package main

import (
	"fmt"
	"os"
	"sort"
)

type command struct {
	help string
	run  func(args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":      {"serve the playground, websocket and OpenAI/Anthropic-compatible HTTP APIs", cmdServe},
		"run":        {"generate from a prompt in the terminal", cmdRun},
		"mkmodel":    {"write a tiny random checkpoint in the released layout", cmdMkmodel},
		"logits":     {"print or save the float32 logits of every position", cmdLogits},
		"info":       {"describe a checkpoint: architecture, layers, parameters, memory plan", cmdInfo},
		"bench":      {"run benchmarks: kernels, layer", cmdBench},
		"perplexity": {"score a text: tokens, perplexity, bits per byte", cmdPerplexity},
		"tokenize":   {"text on stdin to a JSON array of token ids", cmdTokenize},
		"detokenize": {"a JSON array of token ids on stdin to text", cmdDetokenize},
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: edgeseek <command> [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-11s %s\n", n, cmds[n].help)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	c, ok := commands()[os.Args[1]]
	if !ok {
		if os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
			usage()
			return
		}
		fmt.Fprintf(os.Stderr, "edgeseek: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "edgeseek %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
