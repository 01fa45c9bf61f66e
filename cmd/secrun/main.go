// Command secrun runs untrusted container images under a default-deny policy.
// This package only parses flags and maps errors to exit codes; the work is
// done by the runner, audit, policy, verify, seccomp and image packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	_ "github.com/secrun/secrun/internal/hugeheap" // the heap on huge pages
	"github.com/secrun/secrun/runner"
)

func main() {
	code := run()
	if os.Getenv("SECRUN_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "secrun: trace: %-16s %s\n", "main to exit", time.Since(processStart).Round(time.Microsecond))
	}
	os.Exit(code)
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGPIPE)
	defer stop()
	g := &globals{}
	root := newRootCmd(g)
	if needsEngine(root, os.Args[1:]) {
		err := handOff()
		printError(root, err)
		return runner.ExitCode(err)
	}
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return g.exitCode
	}
	if handedOff(err) {
		err = handOff()
	}
	code := runner.ExitCode(err)
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		code = runner.ExitSecrun
	}
	printError(cmd, err)
	return code
}

// printError prints err as one "secrun: ..." line per line of its text.
func printError(_ *cobra.Command, err error) {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		if !strings.HasPrefix(line, "secrun: ") {
			line = "secrun: " + line
		}
		fmt.Fprintln(os.Stderr, line)
	}
}

type usageError struct{ error }

func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") || strings.Contains(s, "invalid argument") ||
		strings.HasPrefix(s, "accepts ") || strings.HasPrefix(s, "requires at least") || strings.HasPrefix(s, "flag needs an argument")
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "secrun",
		Short:         "Run untrusted container images under a default-deny policy",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.bind(root)
	root.AddCommand(
		newRunCmd(g),
		newPsCmd(g), newStopCmd(g), newRmCmd(g), newExecCmd(g),
		newImageCmd(g),
		newVerifyCmd(g), newSignCmd(g), newGenerateKeyPairCmd(),
		newPolicyCmd(g),
		newProfileCmd(g),
		newAuditCmd(g),
	)
	return root
}
