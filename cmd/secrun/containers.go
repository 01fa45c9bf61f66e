package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/runner"
)

func newPsCmd(g *globals) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "ps",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			list, err := r.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAME")
			for _, c := range list {
				if !all && c.Live != "running" && c.Live != "created" && c.Live != "paused" {
					continue
				}
				status := c.Live
				if c.Live == "exited" {
					status = fmt.Sprintf("exited (%d)", c.ExitCode)
				}
				fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\t%s\n", c.ID[:12], c.Image, strings.Join(c.Args, " "),
					c.Created.Local().Format(time.DateTime), status, c.Name)
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers, not only running ones")
	return c
}

func newStopCmd(g *globals) *cobra.Command {
	var timeout int
	c := &cobra.Command{
		Use:   "stop [flags] CONTAINER...",
		Short: "Stop running containers (SIGTERM, then SIGKILL after the timeout)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			for _, ref := range args {
				if err := r.Stop(cmd.Context(), ref, time.Duration(timeout)*time.Second); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return nil
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing")
	return c
}

func newRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm [flags] CONTAINER...",
		Short: "Remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			for _, ref := range args {
				if err := r.Remove(cmd.Context(), ref, force); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return c
}

func newExecCmd(g *globals) *cobra.Command {
	var o runner.ExecOptions
	c := &cobra.Command{
		Use:   "exec [flags] CONTAINER CMD [ARG...]",
		Short: "Run a command in a running container (policy-checked)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Container, o.Args = args[0], args[1:]
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			stdio := processIO(o.Interactive)
			code, err := r.Exec(cmd.Context(), o, stdio)
			g.exitCode = code
			return err
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().BoolVarP(&o.Interactive, "interactive", "i", false, "keep stdin open")
	c.Flags().BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	c.Flags().StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable")
	c.Flags().StringVarP(&o.User, "user", "u", "", "user: name|uid[:group|gid]")
	c.Flags().StringVarP(&o.Workdir, "workdir", "w", "", "working directory")
	return c
}
