package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/image"
)

func newImageCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage the local image store"}
	var insecure bool
	imp := &cobra.Command{
		Use:   "import REF",
		Short: "Import an image: docker-archive:PATH, oci:DIR[:TAG], oci-archive:PATH or a registry reference",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			if insecure {
				fmt.Fprintln(cmd.ErrOrStderr(), "secrun: WARNING: --insecure-registry: fetching over plain HTTP; the image is still checked by digest and signature")
			}
			img, err := st.Import(cmd.Context(), args[0], image.ImportOptions{Insecure: insecure})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Digest, img.Name)
			return nil
		},
	}
	imp.Flags().BoolVar(&insecure, "insecure-registry", false, "allow plain HTTP for the registry (always allowed for localhost)")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List stored images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			list, err := st.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tDIGEST\tSIZE")
			for _, img := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\n", img.Name, img.Digest.String()[:19], humanSize(img.Size))
			}
			return w.Flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove images and the blobs only they used",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			for _, ref := range args {
				if err := r.RemoveImage(ref); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return nil
		},
	}
	c.AddCommand(imp, ls, rm)
	return c
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
