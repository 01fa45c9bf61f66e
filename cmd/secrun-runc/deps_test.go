package main_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/secrun/secrun/internal/testenv"
)

// TestLeanImports keeps secrun-runc's start-up lean: engines run it for
// every state, kill and delete, and package initialisation is paid each
// time. Signatures are the helper's job (secrun-runc-verify); the image
// store and the runner's pipeline are not needed to decide on a bundle.
func TestLeanImports(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/secrun-runc")
	cmd.Dir = testenv.ModuleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/sigstore/",
		"github.com/google/go-containerregistry/",
		"github.com/secrun/secrun/verify",
		"github.com/secrun/secrun/image",
		"github.com/secrun/secrun/runner",
		"github.com/spf13/cobra",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if (dep == f || strings.HasPrefix(dep, f)) && dep != "github.com/secrun/secrun/runner/wrapper" {
				t.Errorf("secrun-runc imports %s: keep it out (it initialises on every runc call)", dep)
			}
		}
	}
}
