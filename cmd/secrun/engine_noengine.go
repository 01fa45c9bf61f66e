//go:build secrun_noengine

package main

import "github.com/spf13/cobra"

// haveEngine: this is the light build (see engine.go).
const haveEngine = false

// The commands that need sigstore are the engine's; here they are only
// names, so that the request is recognised and handed off.

func newVerifyCmd(*globals) *cobra.Command {
	return &cobra.Command{Use: "verify [--key FILE] IMAGE", DisableFlagParsing: true}
}

func newSignCmd(*globals) *cobra.Command {
	return &cobra.Command{Use: "sign --key FILE IMAGE", DisableFlagParsing: true}
}

func newGenerateKeyPairCmd() *cobra.Command {
	return &cobra.Command{Use: "generate-key-pair", DisableFlagParsing: true}
}
