package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/secrun/secrun/internal/testenv"
)

// TestConformance runs the OCI runtime-tools validation suite against runc
// and against secrun-runc (baseline policy, audit-only, no hardening) in
// the same run, through scripts/runtime-conformance.sh: secrun-runc must
// pass every check runc passes. It takes about five minutes, so -short
// skips it; CI runs it.
func TestConformance(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("the runtime-tools suite takes minutes; run without -short or use make conformance")
	}
	bin, _ := binaries(t)
	root := testenv.ModuleRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	report := t.TempDir()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "runtime-conformance.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SECRUN_RUNC="+testenv.Runc(t), "SECRUN_RUNC_WRAPPER="+bin, "CONFORMANCE_OUT="+report)
	out, err := cmd.CombinedOutput()
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("conformance: %v", err)
	}
}
