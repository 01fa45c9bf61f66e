package main_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/secrun/secrun/internal/testenv"
)

// deps lists the packages a command links.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = testenv.ModuleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestLeanImports keeps secrun-runc's start-up lean: engines run it for
// every state, kill, start and delete, and package initialisation is paid
// each time. The front links no policy engine, audit trail or image code:
// only what reads a runc command line and finds runc. Its policy half,
// secrun-runc-admit, runs for create, run and exec; signatures are its
// helper's job (secrun-runc-verify), and the image store and the runner's
// pipeline are not needed to decide on a bundle.
func TestLeanImports(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"./cmd/secrun-runc", []string{
			"github.com/open-policy-agent/", "github.com/sigstore/", "github.com/google/go-containerregistry/",
			"github.com/seccomp/", "github.com/spf13/cobra",
			"github.com/secrun/secrun/policy", "github.com/secrun/secrun/audit", "github.com/secrun/secrun/profiles",
			"github.com/secrun/secrun/seccomp", "github.com/secrun/secrun/verify", "github.com/secrun/secrun/image",
			"github.com/secrun/secrun/runner/wrapper",
		}},
		{"./cmd/secrun-runc/admit", []string{
			"github.com/sigstore/", "github.com/google/go-containerregistry/", "github.com/spf13/cobra",
			"github.com/secrun/secrun/verify", "github.com/secrun/secrun/image",
		}},
	} {
		for _, dep := range deps(t, tc.pkg) {
			for _, f := range tc.forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
					t.Errorf("%s imports %s: keep it out (it initialises on every runtime call)", tc.pkg, dep)
				}
			}
		}
	}
	// The admit half may not import the runner's pipeline either (only its
	// wrapper and the light runcfront).
	for _, dep := range deps(t, "./cmd/secrun-runc/admit") {
		if strings.HasPrefix(dep, "github.com/secrun/secrun/runner") && dep != "github.com/secrun/secrun/runner/wrapper" && dep != "github.com/secrun/secrun/runner/runcfront" {
			t.Errorf("secrun-runc-admit imports %s: keep it out", dep)
		}
	}
}
