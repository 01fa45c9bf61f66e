//go:build secrun_noengine

package policy

import (
	"context"
	"io"
	"time"
)

// Without OPA a policy is never compiled: Load succeeds only for a policy
// whose cache profile is stored, and Eval answers only from the decision
// cache. Everything else is ErrNoEngine.

type compiled struct{}

func (*compiled) eval(context.Context, []byte, time.Time, *Decision) error { return ErrNoEngine }

func (*compiled) analyze(bool) cacheProfile { return cacheProfile{} }

func (e *Engine) build(context.Context, *policySource, map[string]any, func([]Control) error) error {
	return ErrNoEngine
}

// RunTests needs the engine.
func RunTests(context.Context, string, io.Writer) (passed, failed int, err error) {
	return 0, 0, ErrNoEngine
}

// Explain needs the engine: controls are read by evaluating the policy.
func (e *Engine) Explain(io.Writer) error { return ErrNoEngine }
