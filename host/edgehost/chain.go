package edgehost

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgeseek/edgeseek/protocol"
)

// Chain is one session's edge made of several instances: each ABI
// function goes to the first instance whose module exports it. Put a
// partial plugin (say, a sampler only) first and the full Go edge last.
// Handles belong to the instance that created them, so a Chain routes
// edge_release by the function that created the handle (see Release).
type Chain struct {
	insts []*Instance
}

// NewChain returns a chain trying insts in order.
func NewChain(insts ...*Instance) *Chain { return &Chain{insts: insts} }

// Owner returns the instance that serves fn, or nil.
func (c *Chain) Owner(fn string) *Instance {
	for _, in := range c.insts {
		if in.Has(fn) {
			return in
		}
	}
	return nil
}

// Invoke runs fn on its owner (see Instance.Invoke).
func (c *Chain) Invoke(ctx context.Context, fn string, req, rep any) error {
	in := c.Owner(fn)
	if in == nil {
		return fmt.Errorf("edgehost: chain: %s: %w", fn, ErrNotExported)
	}
	return in.Invoke(ctx, fn, req, rep)
}

// Release frees handle h created by function createdBy (for example
// protocol.FnSamplerNew) in the instance that owns createdBy. Modules that
// do not export edge_release keep their objects until the instance closes.
func (c *Chain) Release(ctx context.Context, createdBy string, h protocol.Handle) error {
	in := c.Owner(createdBy)
	if in == nil {
		return fmt.Errorf("edgehost: chain: %s: %w", createdBy, ErrNotExported)
	}
	if !in.Has(protocol.FnRelease) {
		return nil
	}
	return in.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: h}, &protocol.Empty{})
}

// Close closes every instance.
func (c *Chain) Close(ctx context.Context) error {
	var err error
	for _, in := range c.insts {
		err = errors.Join(err, in.Close(ctx))
	}
	return err
}
