//go:build !secrun_noengine

package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/secrun/secrun/policy"
)

// A Memo saves the compilation, never the reading: the same policy gives
// the same compiled Engine, an edited one a new Engine that decides by the
// new text.
func TestMemo(t *testing.T) {
	ctx := context.Background()
	var m policy.Memo
	a, err := policy.Load(ctx, "baseline", policy.WithMemo(&m))
	if err != nil {
		t.Fatal(err)
	}
	b, err := policy.Load(ctx, "baseline", policy.WithMemo(&m))
	if err != nil {
		t.Fatal(err)
	}
	if a != b || m.Len() != 1 {
		t.Fatalf("the same policy loaded twice: engines %p %p, memo holds %d", a, b, m.Len())
	}

	path := filepath.Join(t.TempDir(), "p.rego")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	decide := func() policy.Decision {
		t.Helper()
		e, err := policy.Load(ctx, path, policy.WithMemo(&m))
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Eval(ctx, &policy.Input{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	write("package secrun\n\nallow := true\n")
	if d := decide(); !d.Allowed {
		t.Fatalf("allow-all policy: %+v", d)
	}
	write("package secrun\n\ndeny contains \"edited\" if true\n")
	if d := decide(); d.Allowed || len(d.Violations) == 0 && d.Reason == "" {
		t.Fatalf("edited to deny, the memo still allowed: %+v", d)
	}
	if m.Len() != 3 {
		t.Fatalf("memo holds %d engines, want 3 (baseline and both versions of the file)", m.Len())
	}
	// Bounded: a policy edited over and over does not pin every version.
	for i := range 20 {
		write("package secrun\n\nallow := true\n# version " + string(rune('a'+i)) + "\n")
		decide()
	}
	if m.Len() > 8 {
		t.Fatalf("memo holds %d engines", m.Len())
	}
}
