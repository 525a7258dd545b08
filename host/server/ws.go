package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/gorilla/websocket"
)

// Hijack lets the websocket upgrade take the connection over.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: the response writer cannot be hijacked")
	}
	if w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

// checkOrigin accepts requests without an Origin (non-browser clients),
// from the server's own host, or from a configured origin.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// wsConn is one websocket connection.
type wsConn struct {
	s      *Server
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	out    chan []byte // frames to write; nil closes the connection
	codec  *protocol.Codec
	mode   protocol.Mode
	wg     sync.WaitGroup

	mu   sync.Mutex
	gens map[string]context.CancelFunc // hosted: running requests

	steps chan *protocol.Step // split: steps for the step worker
}

const wsOutQueue = 256

// websocket serves the edge protocol (split and hosted modes).
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10, CheckOrigin: s.checkOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeOpenAIError(w, status, "invalid_request_error", "websocket: "+reason.Error())
		}}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	s.wsConns.Add(1)
	defer s.wsConns.Add(-1)
	ctx, cancel := context.WithCancel(r.Context())
	c := &wsConn{s: s, conn: conn, ctx: ctx, cancel: cancel, out: make(chan []byte, wsOutQueue), gens: map[string]context.CancelFunc{}}
	c.wg.Add(1)
	go c.writer()
	c.read()
	cancel()
	c.wg.Wait()
	conn.Close()
}

// writer sends queued frames and pings; it owns all writes.
func (c *wsConn) writer() {
	defer c.wg.Done()
	ka := c.s.cfg.KeepAlive
	ping := time.NewTicker(ka)
	defer ping.Stop()
	for {
		select {
		case b := <-c.out:
			c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if b == nil {
				c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "closing after a fatal error"))
				c.cancel()
				c.conn.Close() // unblocks the reader
				return
			}
			if err := c.conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
				c.cancel()
				c.conn.Close()
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
				c.cancel()
				c.conn.Close()
				return
			}
		case <-c.ctx.Done():
			// Flush what was queued (a fatal error frame, final events).
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			code := websocket.CloseGoingAway
		flush:
			for {
				select {
				case b := <-c.out:
					if b == nil {
						code = websocket.ClosePolicyViolation
						break flush
					}
					if c.conn.WriteMessage(websocket.BinaryMessage, b) != nil {
						break flush
					}
				default:
					break flush
				}
			}
			c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
			c.conn.Close() // unblocks the reader
			return
		}
	}
}

// send queues a message; false when the connection is gone.
func (c *wsConn) send(m protocol.Message) bool {
	var b []byte
	var err error
	if c.codec != nil {
		b, err = c.codec.Encode(m)
	} else {
		b, err = protocol.Encode(m)
	}
	if err != nil {
		c.s.log.Error().Err(err).Str("type", string(m.Type())).Msg("websocket: encoding a frame")
		return false
	}
	select {
	case c.out <- b:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// fatal sends an error frame and closes the connection.
func (c *wsConn) fatal(code, msg string) {
	c.send(&protocol.Error{Code: code, Message: truncateMsg(msg), Fatal: true})
	select {
	case c.out <- nil:
	case <-c.ctx.Done():
	}
}

func truncateMsg(s string) string {
	if len(s) > 4000 {
		return s[:4000]
	}
	return s
}

// read runs the handshake and dispatches frames until the connection ends.
func (c *wsConn) read() {
	ka := c.s.cfg.KeepAlive
	c.conn.SetReadLimit(c.s.cfg.WSMaxMessage)
	c.conn.SetReadDeadline(time.Now().Add(3 * ka))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(3 * ka)) })
	defer c.stopAll()
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.fatal(protocol.CodeBadFrame, fmt.Sprintf("message over %d bytes", c.s.cfg.WSMaxMessage))
			}
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(3 * ka))
		if typ != websocket.BinaryMessage {
			c.fatal(protocol.CodeBadFrame, "frames must be binary msgpack envelopes")
			return
		}
		var m protocol.Message
		if c.codec == nil {
			m, err = protocol.Decode(data)
		} else {
			m, err = c.codec.Decode(data)
		}
		if err != nil {
			code := protocol.CodeBadFrame
			if errors.Is(err, protocol.ErrVersion) {
				code = protocol.CodeVersion
			}
			c.fatal(code, err.Error())
			return
		}
		if c.codec == nil {
			if !c.handshake(m) {
				return
			}
			continue
		}
		if !c.dispatch(m) {
			return
		}
	}
}

func (c *wsConn) handshake(m protocol.Message) bool {
	h, ok := m.(*protocol.Hello)
	if !ok {
		c.fatal(protocol.CodeInvalid, fmt.Sprintf("the first frame must be hello, got %s", m.Type()))
		return false
	}
	v, err := protocol.Negotiate(h)
	if err != nil {
		c.fatal(protocol.CodeVersion, err.Error())
		return false
	}
	if h.Model != "" && h.Model != c.s.cfg.ModelName {
		c.fatal(protocol.CodeInvalid, fmt.Sprintf("model %q not served; this host serves %q", h.Model, c.s.cfg.ModelName))
		return false
	}
	codec, err := protocol.NewCodec(v)
	if err != nil {
		c.fatal(protocol.CodeVersion, err.Error())
		return false
	}
	c.codec, c.mode = codec, h.Mode
	w := &protocol.Welcome{Version: v, Mode: h.Mode, Model: c.s.cfg.ModelName, Vocab: uint32(c.s.eng.Vocab()),
		MaxContext: uint32(c.s.eng.ContextLimit()), EngramPerToken: uint32(c.s.eng.EngramPerToken()),
		CSALayers: uint32(len(c.s.eng.IndexedLayers())), MHCLayers: uint32(c.s.eng.Layers())}
	if h.Mode == protocol.ModeSplit {
		c.steps = make(chan *protocol.Step, 64)
		c.wg.Add(1)
		go c.stepWorker()
	}
	c.s.log.Info().Str("mode", string(h.Mode)).Str("client", h.Client).Uint16("version", v).Msg("websocket handshake")
	return c.send(w)
}

// dispatch handles one frame after the handshake; false ends the connection.
func (c *wsConn) dispatch(m protocol.Message) bool {
	switch m := m.(type) {
	case *protocol.Generate:
		if c.mode != protocol.ModeHosted {
			break
		}
		c.mu.Lock()
		_, dup := c.gens[m.ID]
		var ctx context.Context
		if !dup {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(c.ctx)
			c.gens[m.ID] = cancel
		}
		c.mu.Unlock()
		if dup {
			return c.send(&protocol.Error{ID: m.ID, Code: protocol.CodeInvalid, Message: "a request with this id is running"})
		}
		c.wg.Add(1)
		go c.generate(ctx, m)
		return true
	case *protocol.Cancel:
		if c.mode != protocol.ModeHosted {
			break
		}
		c.mu.Lock()
		if cancel, ok := c.gens[m.ID]; ok {
			cancel()
		}
		c.mu.Unlock()
		return true
	case *protocol.Step:
		if c.mode != protocol.ModeSplit {
			break
		}
		select {
		case c.steps <- m:
			return true
		default:
			return c.send(&protocol.Error{Seq: m.Seq, Code: protocol.CodeBusy, Message: "more than 64 steps queued"})
		}
	case *protocol.Error:
		c.s.log.Warn().Str("code", m.Code).Str("message", m.Message).Msg("websocket: client error")
		return !m.Fatal
	}
	c.fatal(protocol.CodeInvalid, fmt.Sprintf("%s is not valid in %s mode", m.Type(), c.mode))
	return false
}

// stopAll cancels every running request of the connection.
func (c *wsConn) stopAll() {
	c.cancel()
	c.mu.Lock()
	for _, cancel := range c.gens {
		cancel()
	}
	c.mu.Unlock()
}

func errorCode(err error) string {
	var adm *engine.AdmissionError
	switch {
	case errors.As(err, &adm):
		return protocol.CodeTooLong
	case errors.Is(err, engine.ErrBusy), errors.Is(err, engine.ErrClosed):
		return protocol.CodeBusy
	case errors.Is(err, engine.ErrRewind):
		return protocol.CodeInvalid
	}
	return protocol.CodeInvalid
}

// generate runs one hosted-mode request.
func (c *wsConn) generate(ctx context.Context, g *protocol.Generate) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		if cancel, ok := c.gens[g.ID]; ok {
			cancel()
			delete(c.gens, g.ID)
		}
		c.mu.Unlock()
	}()
	fail := func(code string, err error) {
		c.send(&protocol.Error{ID: g.ID, Code: code, Message: truncateMsg(err.Error())})
		c.send(&protocol.Done{ID: g.ID, Finish: protocol.FinishError})
	}
	edge := c.s.eng.Edge()
	var prompt []int
	var err error
	t0 := time.Now()
	if g.Prompt != "" {
		prompt, err = edge.Encode(g.Prompt)
	} else {
		msgs := make([]engine.Message, len(g.Messages))
		for i, m := range g.Messages {
			msgs[i] = engine.Message{Role: m.Role, Content: m.Content}
		}
		prompt, err = edge.EncodeChat(msgs, engine.ChatOptions{Thinking: g.Chat.Thinking})
	}
	c.s.eng.ObserveEdgeCall(time.Since(t0))
	if err != nil {
		fail(protocol.CodeInvalid, err)
		return
	}
	sp := g.Sampling
	req := engine.Request{ID: g.ID, Prompt: prompt, MaxTokens: int(sp.MaxTokens), Stop: g.Stop,
		Sampling: engine.SamplerParams{Temperature: sp.Temperature, TopK: int(sp.TopK), TopP: sp.TopP, MinP: sp.MinP,
			RepetitionPenalty: sp.RepetitionPenalty, PresencePenalty: sp.PresencePenalty, FrequencyPenalty: sp.FrequencyPenalty,
			Seed: sp.Seed, LogProbs: sp.LogProbs, TopLogProbs: int(sp.TopLogProbs)}}
	for id, b := range sp.LogitBias {
		if req.Sampling.LogitBias == nil {
			req.Sampling.LogitBias = map[int]float32{}
		}
		req.Sampling.LogitBias[int(id)] = b
	}
	for _, t := range sp.StopTokens {
		req.StopTokens = append(req.StopTokens, int(t))
	}
	st, err := c.s.eng.Submit(ctx, req)
	if err != nil {
		fail(errorCode(err), err)
		return
	}
	index := uint32(0)
	for ev := range st.Events {
		switch ev.Kind {
		case engine.EventPrefill:
			c.send(&protocol.Progress{ID: g.ID, Done: uint32(ev.Prefilled), Total: uint32(ev.PromptTokens)})
		case engine.EventToken:
			tok := &protocol.Token{ID: g.ID, Index: index, TokenID: int32(ev.Token.ID), Text: ev.Text}
			if sp.LogProbs {
				lp := ev.Token.LogProb
				tok.LogProb = &lp
				for _, a := range ev.Token.Top {
					tok.Top = append(tok.Top, protocol.Alt{ID: int32(a.ID), LogProb: a.LogProb, Text: []byte(edge.TokenText(a.ID))})
				}
			}
			index++
			c.send(tok)
		case engine.EventDone:
			res := ev.Result
			finish := res.Finish
			switch finish {
			case engine.FinishCancelled:
				finish = protocol.FinishCancel
			case engine.FinishError:
				c.send(&protocol.Error{ID: g.ID, Code: protocol.CodeInternal, Message: truncateMsg(fmt.Sprint(res.Err))})
			}
			c.send(&protocol.Done{ID: g.ID, Finish: finish, Text: ev.Text,
				Usage: protocol.Usage{PromptTokens: uint32(res.Usage.PromptTokens), CompletionTokens: uint32(res.Usage.CompletionTokens),
					CachedTokens: uint32(res.Usage.CachedTokens)},
				Timing: protocol.Timing{QueueUS: uint64(res.Timings.Queued.Microseconds()), PrefillUS: uint64(res.Timings.Prefill.Microseconds()),
					DecodeUS: uint64(res.Timings.Decode.Microseconds())}})
		}
	}
}

// stepWorker runs split-mode steps in order on the connection's sequence.
func (c *wsConn) stepWorker() {
	defer c.wg.Done()
	var seq *engine.Seq
	defer func() {
		if seq != nil {
			seq.Close()
		}
	}()
	per := c.s.eng.EngramPerToken()
	for {
		var m *protocol.Step
		select {
		case m = <-c.steps:
		case <-c.ctx.Done():
			return
		}
		if seq == nil {
			var err error
			if seq, err = c.s.eng.OpenSeq(c.ctx); err != nil {
				c.send(&protocol.Error{Seq: m.Seq, Code: protocol.CodeBusy, Message: err.Error()})
				continue
			}
		}
		tokens := make([]int, len(m.Tokens))
		for i, t := range m.Tokens {
			tokens[i] = int(t)
		}
		var engram [][][]int64
		if per > 0 {
			if len(m.Engram) != per*len(tokens) {
				c.send(&protocol.Error{Seq: m.Seq, Code: protocol.CodeInvalid,
					Message: fmt.Sprintf("step carries %d Engram addresses; want %d per token", len(m.Engram), per)})
				continue
			}
			engram = c.s.eng.SplitEngram(m.Engram, len(tokens))
		}
		res, err := seq.StepTrace(c.ctx, int(m.Pos), tokens, engram, m.WantCSA || m.WantMHC)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.send(&protocol.Error{Seq: m.Seq, Code: errorCode(err), Message: truncateMsg(err.Error())})
			continue
		}
		out := &protocol.Logits{Seq: m.Seq, Pos: uint32(res.Pos - 1),
			Timing: protocol.StepTiming{QueueUS: uint64(res.Queued.Microseconds()), ComputeUS: uint64(res.Compute.Microseconds())}}
		if tr := res.Trace; tr != nil {
			if m.WantCSA {
				out.CSA = csaSelections(tr, c.s.eng.IndexedLayers())
			}
			if m.WantMHC {
				out.MHC = mhcMatrices(tr)
			}
		}
		if m.TopN > 0 {
			out.Top = topLogits(res.Logits, int(m.TopN))
		} else {
			out.F16 = protocol.EncodeFloat16(res.Logits)
		}
		c.send(out)
	}
}

// topLogits returns the n highest logits, highest first (ties: lower id).
func topLogits(logits []float32, n int) []protocol.TopLogit {
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	n = min(n, len(idx))
	out := make([]protocol.TopLogit, n)
	for i := 0; i < n; i++ {
		out[i] = protocol.TopLogit{ID: int32(idx[i]), Logit: logits[idx[i]]}
	}
	return out
}

// csaSelections lists, for each layer whose lightning indexer selects
// compressed entries, the entries the step's last token attended.
func csaSelections(tr *model.Trace, layers []int) []protocol.CSASelection {
	out := make([]protocol.CSASelection, 0, len(layers))
	for _, l := range layers {
		sel := tr.Selected[l]
		pos := make([]int32, len(sel))
		for i, v := range sel {
			pos[i] = int32(v)
		}
		out = append(out, protocol.CSASelection{Layer: uint16(l), Positions: pos})
	}
	return out
}

// mhcMatrices lists each layer's attention-site mixing matrix, by layer.
func mhcMatrices(tr *model.Trace) []protocol.MHCMatrix {
	layers := make([]int, 0, len(tr.Comb))
	for l := range tr.Comb {
		layers = append(layers, l)
	}
	sort.Ints(layers)
	out := make([]protocol.MHCMatrix, 0, len(layers))
	for _, l := range layers {
		var m protocol.MHCMatrix
		m.Layer = uint16(l)
		copy(m.M[:], tr.Comb[l])
		out = append(out, m)
	}
	return out
}
