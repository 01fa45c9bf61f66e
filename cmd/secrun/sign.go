//go:build !secrun_noengine

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/runner"
	"github.com/secrun/secrun/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var key string
	c := &cobra.Command{
		Use:   "verify [--key FILE] IMAGE",
		Short: "Check an image's cosign signature (exit 0 verified, 126 not)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			var trust *verify.Trust
			switch {
			case key != "":
				trust, err = verify.TrustForKey(key)
			case g.trust != "":
				trust, err = verify.LoadTrust(g.trust)
			default:
				err = errors.New("no key: pass --key FILE or a trust config with --trust / SECRUN_TRUST")
			}
			if err != nil {
				return &runner.Error{Code: runner.ExitSecrun, Err: err}
			}
			for _, w := range trust.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "secrun: WARNING: %s\n", w)
			}
			img, err := st.Resolve(cmd.Context(), args[0], image.ImportOptions{})
			if err != nil {
				return err
			}
			v := verify.NewVerifier(trust, filepath.Join(g.root, "verdicts"))
			subject, err := verify.StoredSubject(st, img)
			var verdict verify.Verdict
			if err == nil {
				verdict, err = v.Verify(cmd.Context(), subject)
			}
			code := verify.ExitCode(verdict, err)
			switch {
			case err != nil:
				return &runner.Error{Code: code, Err: fmt.Errorf("signature of %s could not be checked: %w", img.Name, err)}
			case !verdict.Verified:
				return &runner.Error{Code: code, Err: fmt.Errorf("%s@%s is not verified: %s", img.Name, img.Digest, verdict.Error)}
			}
			via := ""
			if verdict.Index != "" {
				via = " (a signature on its image index " + verdict.Index + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verified %s@%s signed by %s%s\n", img.Name, img.Digest, strings.Join(verdict.Signers, ", "), via)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "cosign public key (PEM) to verify with, instead of the trust config")
	return c
}

func newSignCmd(g *globals) *cobra.Command {
	var key string
	var push bool
	c := &cobra.Command{
		Use:   "sign --key FILE IMAGE",
		Short: "Sign an image in the local store with a cosign key (password from COSIGN_PASSWORD)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("sign needs --key FILE (make one with 'secrun generate-key-pair')")
			}
			st, err := g.store()
			if err != nil {
				return err
			}
			img, err := st.Resolve(cmd.Context(), args[0], image.ImportOptions{})
			if err != nil {
				return err
			}
			if _, err := verify.SignAndStore(cmd.Context(), st, img.Digest, verify.SignOptions{KeyPath: key, Pass: verify.PasswordFromEnv(), Ref: img.Name, Push: push}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %s@%s\n", img.Name, img.Digest)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "cosign private key file")
	c.Flags().BoolVar(&push, "push", false, "also push the signature (sha256-<digest>.sig) to the image's registry")
	return c
}

func newGenerateKeyPairCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate-key-pair",
		Short: "Write cosign.key and cosign.pub in the current directory (password from COSIGN_PASSWORD)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.Getwd()
			if err != nil {
				return err
			}
			if err := verify.GenerateKeyPair(dir, verify.PasswordFromEnv()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Private key written to cosign.key\nPublic key written to cosign.pub")
			return nil
		},
	}
}
