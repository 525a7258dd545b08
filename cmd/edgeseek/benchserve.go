package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/server"
	"github.com/edgeseek/edgeseek/protocol"
)

// benchServe implements `edgeseek bench serve`: on the tiny demo model (or
// --model), the per-token cost of the hosted websocket, the split-mode
// websocket and HTTP SSE over loopback, each against driving the engine
// directly in the same run, and the aggregate decode throughput of 1, 8 and
// 32 concurrent sessions.
func benchServe(args []string) error {
	fs := flag.NewFlagSet("bench serve", flag.ContinueOnError)
	var hf hostFlags
	hf.register(fs)
	js := fs.Bool("json", false, "one JSON object per line")
	toks := fs.Int("tokens", 128, "tokens generated per timed request")
	reps := fs.Int("reps", 3, "repetitions per measurement (the best is reported)")
	aggToks := fs.Int("aggregate-tokens", 32, "tokens per session in the aggregate runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *toks < 2 || *reps < 1 || *aggToks < 1 {
		return errors.New("bench serve: --tokens must be at least 2, --reps and --aggregate-tokens at least 1")
	}
	h, err := startHost(&hf, zerolog.Nop())
	if err != nil {
		return err
	}
	defer h.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: server.New(server.Config{}, h.eng, zerolog.Nop()), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		hs.Close()
		<-served
	}()
	b := &serveBench{eng: h.eng, base: "127.0.0.1:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port), toks: *toks,
		cl: &http.Client{Timeout: 10 * time.Minute}, split: len(h.m.Config.EngramLayers) == 0}
	defer b.cl.CloseIdleConnections()
	if b.prompt, err = h.eng.Edge().Encode(serveBenchPrompt); err != nil {
		return err
	}
	b.prompt = append([]int{h.m.Config.BOS}, b.prompt...)
	b.bias = map[int]float32{h.m.Config.EOS: -100}

	var rows []benchRow
	best := func(f func() (time.Duration, int, error)) (float64, error) {
		var bestMS float64
		for i := 0; i < *reps; i++ {
			d, n, err := f()
			if err != nil {
				return 0, err
			}
			if ms := d.Seconds() * 1e3 / float64(n); i == 0 || ms < bestMS {
				bestMS = ms
			}
		}
		return bestMS, nil
	}
	// Warm up the engine, the edge and the connections once.
	if _, _, err := b.direct(); err != nil {
		return err
	}
	direct, err := best(b.direct)
	if err != nil {
		return err
	}
	shape := fmt.Sprintf("%s, %d tokens", h.m.Config.Arch, *toks)
	for _, p := range []struct {
		name string
		run  func() (time.Duration, int, error)
		base float64
	}{
		{"serve_ws_hosted", b.wsHosted, direct},
		{"serve_sse", b.sse, direct},
	} {
		v, err := best(p.run)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		rows = append(rows, benchRow{Name: p.name, Shape: shape, Value: v, Unit: "ms/token", Baseline: p.base, Ratio: v / p.base, Overhead: v - p.base})
	}
	if b.split {
		directSplit, err := best(b.directSplit)
		if err != nil {
			return err
		}
		v, err := best(b.wsSplit)
		if err != nil {
			return fmt.Errorf("serve_ws_split: %w", err)
		}
		rows = append(rows, benchRow{Name: "serve_ws_split", Shape: shape, Value: v, Unit: "ms/token", Baseline: directSplit, Ratio: v / directSplit, Overhead: v - directSplit})
	}
	var one float64
	for _, n := range []int{1, 8, 32} {
		tps, err := b.aggregate(n, *aggToks)
		if err != nil {
			return fmt.Errorf("aggregate %d: %w", n, err)
		}
		if n == 1 {
			one = tps
		}
		rows = append(rows, benchRow{Name: "serve_aggregate", Shape: fmt.Sprintf("%s, %d sessions", h.m.Config.Arch, n), Value: tps, Unit: "tok/s", Baseline: one, Ratio: tps / one})
	}
	if *js {
		for _, r := range rows {
			m := map[string]any{"name": r.Name, "shape": r.Shape, "value": r.Value, "unit": r.Unit, "baseline": r.Baseline, "ratio": r.Ratio}
			if r.Unit == "ms/token" {
				m["overhead_ms"] = r.Overhead
				m["goal_ms"] = serveOverheadGoal
			}
			out, _ := json.Marshal(m)
			fmt.Println(string(out))
		}
		return nil
	}
	fmt.Printf("per-token time through each path against the engine driven directly (goal: overhead <= %.1f ms/token)\n", serveOverheadGoal)
	fmt.Printf("%-16s %-22s %12s %12s %12s %8s\n", "path", "shape", "ms/token", "direct", "overhead", "ratio")
	for _, r := range rows {
		if r.Unit != "ms/token" {
			continue
		}
		fmt.Printf("%-16s %-22s %12.3f %12.3f %12.3f %8.2f\n", r.Name, r.Shape, r.Value, r.Baseline, r.Overhead, r.Ratio)
	}
	fmt.Printf("\naggregate decode throughput (engine direct, %d tokens per session)\n", *aggToks)
	fmt.Printf("%-16s %-22s %12s %12s\n", "sessions", "shape", "tok/s", "x 1 session")
	for _, r := range rows {
		if r.Unit == "tok/s" {
			fmt.Printf("%-16s %-22s %12.1f %12.2f\n", r.Name, r.Shape, r.Value, r.Ratio)
		}
	}
	return nil
}

// serveOverheadGoal is the per-token cost, in ms, a transport may add.
const serveOverheadGoal = 0.5

const serveBenchPrompt = "The quick brown fox"

type benchRow struct {
	Name, Shape, Unit      string
	Value, Baseline, Ratio float64
	Overhead               float64
}

type serveBench struct {
	eng    *engine.Engine
	base   string // host:port
	cl     *http.Client
	prompt []int
	bias   map[int]float32
	toks   int
	split  bool // the model needs no Engram rows from split-mode clients
}

func (b *serveBench) request(maxTokens int, seed uint64) engine.Request {
	return engine.Request{Prompt: b.prompt, MaxTokens: maxTokens, IgnoreEOS: true,
		Sampling: engine.SamplerParams{Temperature: 1, Seed: seed, LogitBias: b.bias}}
}

// direct generates through the engine API: the baseline of the hosted paths.
func (b *serveBench) direct() (time.Duration, int, error) {
	t0 := time.Now()
	st, err := b.eng.Submit(context.Background(), b.request(b.toks, 1))
	if err != nil {
		return 0, 0, err
	}
	n, err := drain(st)
	return time.Since(t0), n, err
}

// drain reads a stream to its end and counts its tokens.
func drain(st *engine.Stream) (int, error) {
	n := 0
	for ev := range st.Events {
		switch ev.Kind {
		case engine.EventToken:
			n++
		case engine.EventDone:
			if ev.Result.Err != nil {
				return n, ev.Result.Err
			}
		}
	}
	if n == 0 {
		return 0, errors.New("no tokens generated")
	}
	return n, nil
}

func (b *serveBench) dial(mode protocol.Mode) (*websocket.Conn, error) {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+b.base+"/ws", nil)
	if err != nil {
		return nil, err
	}
	if err := wsWrite(c, &protocol.Hello{MinVersion: 1, MaxVersion: 1, Mode: mode, Client: "bench"}); err != nil {
		c.Close()
		return nil, err
	}
	m, err := wsRead(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	if _, ok := m.(*protocol.Welcome); !ok {
		c.Close()
		return nil, fmt.Errorf("websocket: %T instead of a welcome", m)
	}
	return c, nil
}

func wsWrite(c *websocket.Conn, m protocol.Message) error {
	buf, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	return c.WriteMessage(websocket.BinaryMessage, buf)
}

func wsRead(c *websocket.Conn) (protocol.Message, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	_, buf, err := c.ReadMessage()
	if err != nil {
		return nil, err
	}
	m, err := protocol.Decode(buf)
	if err != nil {
		return nil, err
	}
	if e, ok := m.(*protocol.Error); ok {
		return nil, fmt.Errorf("websocket error %s: %s", e.Code, e.Message)
	}
	return m, nil
}

// wsHosted generates through the hosted websocket mode (connection set-up
// included, as a client pays it once per request at most).
func (b *serveBench) wsHosted() (time.Duration, int, error) {
	t0 := time.Now()
	c, err := b.dial(protocol.ModeHosted)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	bias := map[int32]float32{}
	for id, v := range b.bias {
		bias[int32(id)] = v
	}
	if err := wsWrite(c, &protocol.Generate{ID: "bench", Prompt: serveBenchPrompt,
		Sampling: protocol.SamplingParams{MaxTokens: int32(b.toks), Seed: 1, Temperature: 1, LogitBias: bias}}); err != nil {
		return 0, 0, err
	}
	n := 0
	for {
		m, err := wsRead(c)
		if err != nil {
			return 0, 0, err
		}
		switch m.(type) {
		case *protocol.Token:
			n++
		case *protocol.Done:
			return time.Since(t0), max(n, 1), nil
		}
	}
}

// directSplit drives a client-chosen sequence through the engine API, greedy:
// the baseline of the split websocket.
func (b *serveBench) directSplit() (time.Duration, int, error) {
	t0 := time.Now()
	q, err := b.eng.OpenSeq(context.Background())
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	step := b.prompt
	pos := 0
	for i := 0; i < b.toks; i++ {
		res, err := q.Step(context.Background(), pos, step, nil)
		if err != nil {
			return 0, 0, err
		}
		pos = res.Pos
		step = []int{argmax(res.Logits)}
	}
	return time.Since(t0), b.toks, nil
}

// wsSplit does what directSplit does over the split websocket, asking for
// the top logit only (the browser edge asks for the full vector when it
// samples; TopN 1 isolates the transport's fixed cost).
func (b *serveBench) wsSplit() (time.Duration, int, error) {
	t0 := time.Now()
	c, err := b.dial(protocol.ModeSplit)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	step := make([]int32, len(b.prompt))
	for i, t := range b.prompt {
		step[i] = int32(t)
	}
	pos := 0
	for i := 0; i < b.toks; i++ {
		if err := wsWrite(c, &protocol.Step{Seq: uint64(i), Pos: uint32(pos), Tokens: step, TopN: 1}); err != nil {
			return 0, 0, err
		}
		m, err := wsRead(c)
		if err != nil {
			return 0, 0, err
		}
		l, ok := m.(*protocol.Logits)
		if !ok || len(l.Top) == 0 {
			return 0, 0, fmt.Errorf("split step %d: %T without a top logit", i, m)
		}
		pos += len(step)
		step = []int32{l.Top[0].ID}
	}
	return time.Since(t0), b.toks, nil
}

// sse generates through POST /v1/completions with streaming.
func (b *serveBench) sse() (time.Duration, int, error) {
	body, _ := json.Marshal(map[string]any{"prompt": serveBenchPrompt, "max_tokens": b.toks, "seed": 1, "temperature": 1,
		"ignore_eos": true, "stream": true})
	t0 := time.Now()
	resp, err := b.cl.Post("http://"+b.base+"/v1/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "data: [DONE]" {
			break
		}
		if strings.HasPrefix(line, "data: ") {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return time.Since(t0), max(n, 1), nil
}

// aggregate runs n sessions of toks tokens at once through the engine and
// returns the generated tokens per second.
func (b *serveBench) aggregate(n, toks int) (float64, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	var first error
	t0 := time.Now()
	for s := 0; s < n; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := b.request(toks, uint64(s+1))
			// Distinct last tokens, so sessions share no whole prompt.
			req.Prompt = append(append([]int(nil), b.prompt...), (3+7*s)%b.eng.Vocab())
			st, err := b.eng.Submit(context.Background(), req)
			var got int
			if err == nil {
				got, err = drain(st)
			}
			mu.Lock()
			total += got
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(total) / time.Since(t0).Seconds(), nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
