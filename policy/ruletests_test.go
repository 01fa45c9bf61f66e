package policy_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/policy"
)

// The built-in library ships its own Rego tests; they all pass.
func TestBuiltinRegoTests(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := policy.RunTests(context.Background(), "", &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("built-in library: %d Rego tests passed", passed)
	if failed != 0 {
		t.Fatalf("%d Rego tests failed:\n%s", failed, out.String())
	}
	// Each built-in policy has at least an allow and a deny test per control.
	for _, name := range []string{"restricted", "baseline", "cis-docker"} {
		if !strings.Contains(out.String(), "== "+name) {
			t.Errorf("no tests ran for %s:\n%s", name, out.String())
		}
		min := 2 * len(builtin(t, name).Controls())
		if passed < min {
			t.Errorf("%d tests, want at least %d for %s", passed, min, name)
		}
	}
}

func TestRunTestsCustom(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	passed, failed, err := policy.RunTests(ctx, filepath.Join(testdata, "customdir"), &out)
	if err != nil || passed != 3 || failed != 0 {
		t.Fatalf("customdir: %d passed, %d failed, %v\n%s", passed, failed, err, out.String())
	}

	out.Reset()
	passed, failed, err = policy.RunTests(ctx, filepath.Join(testdata, "failing-tests"), &out)
	if err != nil || passed != 1 || failed != 1 {
		t.Fatalf("failing-tests: %d passed, %d failed, %v\n%s", passed, failed, err, out.String())
	}
	if !strings.Contains(out.String(), "test_exec_allowed: FAIL") {
		t.Errorf("report does not name the failing test:\n%s", out.String())
	}

	dir := t.TempDir()
	writeFile(t, dir, "policy.rego", "package secrun\n\nallow := true\n")
	if _, _, err := policy.RunTests(ctx, dir, &out); err == nil || !strings.Contains(err.Error(), "no tests") {
		t.Errorf("no tests: %v", err)
	}

	writeFile(t, dir, "broken_test.rego", "package secrun_test\n\ntest_x if {\n")
	_, _, err = policy.RunTests(ctx, dir, &out)
	var denied *policy.DeniedError
	if err == nil || !strings.Contains(err.Error(), "broken_test.rego:") || errors.As(err, &denied) {
		t.Errorf("broken test file: %v", err)
	}
}
