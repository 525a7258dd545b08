package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
)

func TestSeqStepsMatchDirectForward(t *testing.T) {
	r := enginetest.NewRunner()
	e := newEngine(t, r, engine.Config{PrefillChunk: 8})
	q, err := e.OpenSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ref := r.NewSequence()
	toks := []int{0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22}
	want, _ := r.Forward(ref, toks, nil)
	ctx := context.Background()
	// A 19-token chunk (run as 8+8+3), then two single tokens.
	res, err := q.Step(ctx, 0, toks, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pos != 19 || fmt.Sprint(res.Logits[:8]) != fmt.Sprint(want[:8]) {
		t.Fatalf("pos %d logits %v, want %v", res.Pos, res.Logits[:4], want[:4])
	}
	want, _ = r.Forward(ref, []int{30}, nil)
	if res, err = q.Step(ctx, 19, []int{30}, nil); err != nil || fmt.Sprint(res.Logits[:8]) != fmt.Sprint(want[:8]) {
		t.Fatalf("decode step: %v", err)
	}
	// Rewinding is refused; restarting at 0 works.
	if _, err := q.Step(ctx, 5, []int{3}, nil); !errors.Is(err, engine.ErrRewind) {
		t.Fatalf("rewind: %v", err)
	}
	if res, err = q.Step(ctx, 0, []int{0, 5}, nil); err != nil || res.Pos != 2 {
		t.Fatalf("restart: %+v %v", res.Pos, err)
	}
	if s := e.Stats(); s.ActiveSessions != 1 || s.ReservedBytes == 0 {
		t.Fatalf("stats %+v", s)
	}
	q.Close()
	select {
	case ev := <-q.Done():
		if ev.Result == nil || ev.Result.Finish != engine.FinishStop {
			t.Fatalf("close result %+v", ev.Result)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sequence not freed")
	}
	if s := e.Stats(); s.ActiveSessions != 0 || s.ReservedBytes != 0 {
		t.Fatalf("after close: %+v", s)
	}
	if _, err := q.Step(ctx, 2, []int{1}, nil); err == nil {
		t.Fatal("step after close succeeded")
	}
}
