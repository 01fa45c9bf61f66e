package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner"
)

func newPolicyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Evaluate, test and explain Rego policies"}
	var input string
	eval := &cobra.Command{
		Use:   "eval --input FILE",
		Short: "Evaluate the active policy on an input document and print the decision as JSON (exit 126 when denied)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" {
				return fmt.Errorf("policy eval needs --input FILE (a policy input document; see docs/policy-input.md)")
			}
			f, err := os.Open(input)
			if err != nil {
				return err
			}
			in, err := policy.ReadInput(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("input %s: %w", input, err)
			}
			eng, err := g.loadPolicy(cmd)
			if err != nil {
				return err
			}
			d, err := eng.Eval(cmd.Context(), in)
			if err != nil {
				return &runner.Error{Code: runner.ExitDenied, Err: err}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(d); err != nil {
				return err
			}
			if !d.Allowed {
				g.exitCode = runner.ExitDenied
			}
			return nil
		},
	}
	eval.Flags().StringVar(&input, "input", "", "input document (JSON)")
	test := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the *_test.rego tests in DIR (default: the built-in library's own tests)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			passed, failed, err := policy.RunTests(cmd.Context(), dir, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d passed, %d failed\n", passed, failed)
			if failed > 0 {
				g.exitCode = 1
			}
			return nil
		},
	}
	explain := &cobra.Command{
		Use:   "explain",
		Short: "List the controls of the active policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eng, err := g.loadPolicy(cmd)
			if err != nil {
				return err
			}
			return eng.Explain(cmd.OutOrStdout())
		},
	}
	c.AddCommand(eval, test, explain)
	return c
}
