package main

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/audit"
)

func newAuditCmd(g *globals) *cobra.Command {
	var ff fleetFlags
	c := &cobra.Command{
		Use:   "audit [flags]",
		Short: "Audit every running container on the host (and, with 'log', the audit trail)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runFleetAudit(cmd, g, &ff) },
	}
	ff.bind(c)
	log := &cobra.Command{Use: "log", Short: "Verify and show the tamper-evident audit trail"}
	var pubKey string
	verifyCmd := &cobra.Command{
		Use:   "verify [FILE...]",
		Short: "Check the whole hash chain (and signed checkpoints); names the first bad record",
		RunE: func(cmd *cobra.Command, args []string) error {
			files := args
			if len(files) == 0 {
				var err error
				if files, err = audit.Files(g.auditPath()); err != nil {
					return err
				}
			}
			var pub ed25519.PublicKey
			if pubKey != "" {
				var err error
				if pub, err = audit.LoadPublicKey(pubKey); err != nil {
					return err
				}
			}
			rep, err := audit.Verify(files, pub)
			if err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "secrun: warning: %s\n", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d records in %d files, %d checkpoints, head %s\n", rep.Records, rep.Files, rep.Checkpoints, rep.Head)
			return nil
		},
	}
	verifyCmd.Flags().StringVar(&pubKey, "key", "", "ed25519 public key (PEM) that signs checkpoints")
	var f audit.Filter
	var since string
	var asJSON bool
	show := &cobra.Command{
		Use:   "show [--container ID] [--since T] [--kind K]",
		Short: "Show audit records as a table, or JSON lines with --json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				t, err := parseSince(since)
				if err != nil {
					return err
				}
				f.Since = t
			}
			files, err := audit.Files(g.auditPath())
			if err != nil {
				return err
			}
			return audit.Show(cmd.OutOrStdout(), files, f, asJSON)
		},
	}
	show.Flags().StringVar(&f.Container, "container", "", "only this container (id prefix or name)")
	show.Flags().StringVar(&since, "since", "", "only records since T (RFC 3339, or a duration such as 1h)")
	show.Flags().StringVar(&f.Kind, "kind", "", "only this event kind (e.g. policy.decision)")
	show.Flags().BoolVar(&asJSON, "json", false, "JSON lines for machines")
	checkpoint := &cobra.Command{
		Use:   "checkpoint",
		Short: "Write a signed checkpoint now (needs --audit-key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.auditKey == "" {
				return fmt.Errorf("checkpoint needs --audit-key FILE (an ed25519 private key)")
			}
			t, err := g.openTrail()
			if err != nil {
				return err
			}
			if err := t.Checkpoint(cmd.Context()); err != nil {
				t.Close()
				return err
			}
			return t.Close()
		},
	}
	log.AddCommand(verifyCmd, show, checkpoint)
	c.AddCommand(log)
	return c
}

func parseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want RFC 3339 (2026-01-02T15:04:05Z) or a duration (1h)", s)
	}
	return t, nil
}
