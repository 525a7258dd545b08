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
//
// A tokenizer plugin (it exports edge_tokenizer_attach and edge_tokenize)
// serves the sessions of the instance that opens them: when a session is
// opened through the chain, the chain gives every tokenizer plugin in it
// the session's tokenizer image (AttachTokenizer), and edge_tokenize
// requests naming the session then go to the first plugin.
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

// Invoke runs fn on its owner (see Instance.Invoke). A session opened
// with edge_session_new (rep a *protocol.SessionInfo) is attached to the
// chain's tokenizer plugins before Invoke returns; if that fails, the
// session is released again and the error returned.
func (c *Chain) Invoke(ctx context.Context, fn string, req, rep any) error {
	in := c.Owner(fn)
	if in == nil {
		return fmt.Errorf("edgehost: chain: %s: %w", fn, ErrNotExported)
	}
	if err := in.Invoke(ctx, fn, req, rep); err != nil {
		return err
	}
	if info, ok := rep.(*protocol.SessionInfo); ok && fn == protocol.FnSessionNew {
		if err := c.AttachTokenizer(ctx, info.Handle); err != nil {
			if in.Has(protocol.FnRelease) {
				in.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: info.Handle}, &protocol.Empty{})
			}
			return err
		}
	}
	return nil
}

// tokenizers returns the chain's tokenizer plugins.
func (c *Chain) tokenizers() []*Instance {
	var ts []*Instance
	for _, in := range c.insts {
		if in.Has(protocol.FnTokenizerAttach) {
			ts = append(ts, in)
		}
	}
	return ts
}

// AttachTokenizer gives each tokenizer plugin of the chain the tokenizer
// image of session h, which the instance owning edge_session_new opened
// (edge_tokenizer_image, then edge_tokenizer_attach). Invoke does it for
// sessions opened through the chain; call it for a session opened in that
// instance directly. Without tokenizer plugins it does nothing.
func (c *Chain) AttachTokenizer(ctx context.Context, h protocol.Handle) error {
	ts := c.tokenizers()
	if len(ts) == 0 {
		return nil
	}
	img, err := TokenizerImage(ctx, c.Owner(protocol.FnSessionNew), h)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if err := t.Invoke(ctx, protocol.FnTokenizerAttach, &protocol.TokenizerAttach{Handle: h, Image: img}, &protocol.Empty{}); err != nil {
			return fmt.Errorf("edgehost: chain: attaching session %d to the tokenizer plugin: %w", h, err)
		}
	}
	return nil
}

// TokenizerImage returns the tokenizer image of session h of the edge
// instance in (edge_tokenizer_image).
func TokenizerImage(ctx context.Context, in *Instance, h protocol.Handle) ([]byte, error) {
	if in == nil || !in.Has(protocol.FnTokenizerImage) {
		return nil, fmt.Errorf("edgehost: a tokenizer plugin needs an edge module that exports %s: %w", protocol.FnTokenizerImage, ErrNotExported)
	}
	var img protocol.TokenizerImage
	if err := in.Invoke(ctx, protocol.FnTokenizerImage, &protocol.HandleRequest{Handle: h}, &img); err != nil {
		return nil, fmt.Errorf("edgehost: %s of session %d: %w", protocol.FnTokenizerImage, h, err)
	}
	return img.Image, nil
}

// Release frees handle h created by function createdBy (for example
// protocol.FnSamplerNew) in the instance that owns createdBy. Modules that
// do not export edge_release keep their objects until the instance closes.
func (c *Chain) Release(ctx context.Context, createdBy string, h protocol.Handle) error {
	in := c.Owner(createdBy)
	if in == nil {
		return fmt.Errorf("edgehost: chain: %s: %w", createdBy, ErrNotExported)
	}
	var err error
	if in.Has(protocol.FnRelease) {
		err = in.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: h}, &protocol.Empty{})
	}
	if createdBy == protocol.FnSessionNew {
		// The tokenizer plugins hold the session's image under its handle.
		for _, t := range c.tokenizers() {
			if t != in && t.Has(protocol.FnRelease) {
				err = errors.Join(err, t.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: h}, &protocol.Empty{}))
			}
		}
	}
	return err
}

// Close closes every instance.
func (c *Chain) Close(ctx context.Context) error {
	var err error
	for _, in := range c.insts {
		err = errors.Join(err, in.Close(ctx))
	}
	return err
}
