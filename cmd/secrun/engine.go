package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner"
)

// secrun is installed as two builds of this command. `secrun` is built with
// the secrun_noengine tag: it links neither OPA nor sigstore, whose package
// initialisation alone costs about 50 ms, and runs containers whose policy
// decision and signature verdict are already in the decision and verdict
// caches. `secrun-engine`, beside it, is the full build. The light build
// hands a request to the engine, by exec with the same arguments, when the
// command needs the engine (policy, verify, sign, audit, profile) or when a
// decision or verdict is not cached (policy.ErrNoEngine). A hand-off
// happens before anything is recorded or started, so the engine sees the
// request as if it had been made to it directly.
const engineName = "secrun-engine"

// lightCommands run in the light build; the rest are handed off at once.
var lightCommands = []string{
	"secrun run", "secrun exec", "secrun ps", "secrun stop", "secrun rm",
	"secrun image import", "secrun image ls", "secrun image rm",
}

// needsEngine reports whether the light build hands args to the engine
// before running anything.
func needsEngine(root *cobra.Command, args []string) bool {
	if haveEngine {
		return false
	}
	cmd, _, err := root.Find(args)
	return err != nil || !slices.Contains(lightCommands, cmd.CommandPath())
}

// handedOff reports whether err asks for the engine.
func handedOff(err error) bool {
	return !haveEngine && errors.Is(err, policy.ErrNoEngine)
}

// handOff replaces this process with the engine, with the same arguments
// and environment. It returns only on failure.
func handOff() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding %s: %w", engineName, err)
	}
	engine := filepath.Join(filepath.Dir(self), engineName)
	if os.Getenv("SECRUN_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "secrun: trace: %-16s %s\n", "hand-off", engine)
	}
	err = unix.Exec(engine, append([]string{os.Args[0]}, os.Args[1:]...), os.Environ())
	return &runner.Error{Code: runner.ExitSecrun, Err: fmt.Errorf(
		"this secrun needs %s for this request (the policy or signature engine) and cannot run it: %v; reinstall secrun with `make install`, which puts %s beside secrun",
		engine, err, engineName)}
}
