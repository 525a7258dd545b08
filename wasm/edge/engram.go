package edge

import (
	"errors"
	"fmt"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/engram"
)

func checkEngram(c *protocol.EngramConfig) error {
	if len(c.LayerIDs) == 0 || c.MaxNgram < 2 || c.Heads < 1 {
		return errors.New("engram config needs layer_ids, max_ngram >= 2 and heads >= 1")
	}
	return nil
}

// engramConfig converts the protocol configuration.
func engramConfig(c *protocol.EngramConfig) engram.Config {
	cfg := engram.Config{
		MaxNgram:        int(c.MaxNgram),
		Heads:           int(c.Heads),
		VocabSize:       int(c.VocabSize),
		CompressedVocab: int(c.CompressedVocab),
		PadID:           int(c.PadID),
	}
	for _, l := range c.LayerIDs {
		cfg.LayerIDs = append(cfg.LayerIDs, int(l))
	}
	return cfg
}

// addresser is the session's Engram addresser, built on first use: the
// canonical map decodes and normalizes the whole vocabulary.
func (s *session) addresser() (*engram.Addresser, error) {
	if s.engramAddr != nil {
		return s.engramAddr, nil
	}
	if s.engram == nil {
		return nil, errors.New("session has no Engram config")
	}
	canon, _, err := engram.CanonicalMap(s.tok)
	if err != nil {
		return nil, err
	}
	a, err := engram.NewAddresser(engramConfig(s.engram), canon)
	if err != nil {
		return nil, err
	}
	s.engramAddr = a
	return a, nil
}

// engramSeq is one sequence's Engram state.
type engramSeq struct {
	st  *engram.State
	out [][]int64
	per int
}

// EngramNew starts Engram addressing for one sequence of a session (at
// position 0).
func (e *Edge) EngramNew(r *protocol.HandleRequest) (*protocol.HandleReply, error) {
	s, err := get[*session](e, r.Handle, "session")
	if err != nil {
		return nil, err
	}
	a, err := s.addresser()
	if err != nil {
		return nil, fmt.Errorf("edge: engram_new: %w", err)
	}
	cfg := a.Config()
	cols := (cfg.MaxNgram - 1) * cfg.Heads
	seq := &engramSeq{st: a.NewState(), per: cols * len(cfg.LayerIDs)}
	for range cfg.LayerIDs {
		seq.out = append(seq.out, make([]int64, cols))
	}
	h, err := e.put(seq)
	if err != nil {
		return nil, err
	}
	return &protocol.HandleReply{Handle: h}, nil
}

// Engram appends tokens to a sequence and returns their Engram row ids,
// token-major, as protocol.Step.Engram expects.
func (e *Edge) Engram(r *protocol.IDsRequest) (*protocol.AddrReply, error) {
	seq, err := get[*engramSeq](e, r.Handle, "engram sequence")
	if err != nil {
		return nil, err
	}
	rep := &protocol.AddrReply{Rows: make([]int64, 0, len(r.IDs)*seq.per), PerToken: uint32(seq.per)}
	for i, id := range r.IDs {
		if err := seq.st.PushInto(seq.out, int(id), false); err != nil {
			return nil, fmt.Errorf("edge: engram: token %d: %w", i, err)
		}
		for _, l := range seq.out {
			rep.Rows = append(rep.Rows, l...)
		}
	}
	return rep, nil
}
