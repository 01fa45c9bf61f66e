package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/profiles"
	"github.com/secrun/secrun/runner"
	"github.com/secrun/secrun/seccomp"
)

func newProfileCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "profile", Short: "Seccomp and AppArmor profiles: show, record, diff, merge"}
	show := &cobra.Command{
		Use:   "show [FILE]",
		Short: "Validate a Docker-format seccomp profile (default: secrun's built-in) and print its size",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, name := profiles.DefaultSeccomp(), "default"
			if len(args) == 1 {
				var err error
				if p, err = seccomp.LoadFile(args[0]); err != nil {
					return err
				}
				name = args[0]
			}
			oci, err := p.ToOCI(nil)
			if err != nil {
				return err
			}
			n, err := seccomp.BPFSize(oci)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "profile %s: default action %s, %d syscalls allowed, %d BPF instructions\n",
				name, oci.DefaultAction, len(seccomp.Allowed(oci)), n)
			return nil
		},
	}
	diff := &cobra.Command{
		Use:   "diff A B",
		Short: "Show the syscalls B allows that A does not, and the reverse",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := seccomp.LoadFile(args[0])
			if err != nil {
				return err
			}
			b, err := seccomp.LoadFile(args[1])
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), seccomp.Diff(a, b).String())
			return nil
		},
	}
	var out string
	merge := &cobra.Command{
		Use:   "merge A B... [-o FILE]",
		Short: "Union of several recorded profiles",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps []*seccomp.Profile
			for _, f := range args {
				p, err := seccomp.LoadFile(f)
				if err != nil {
					return err
				}
				ps = append(ps, p)
			}
			data, err := seccomp.Merge(ps...).Marshal()
			if err != nil {
				return err
			}
			return writeOut(cmd, out, data)
		},
	}
	merge.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	c.AddCommand(show, diff, merge, newRecordCmd(g), newAppArmorCmd(g))
	return c
}

// writeOut writes data to path atomically, or to stdout when path is "".
func writeOut(cmd *cobra.Command, path string, data []byte) error {
	if path == "" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func newRecordCmd(g *globals) *cobra.Command {
	var o runner.RunOptions
	var out string
	c := &cobra.Command{
		Use:   "record [run flags] -o FILE IMAGE [CMD [ARG...]]",
		Short: "Record a workload's syscalls and write a minimal default-deny seccomp profile (Docker format)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("profile record needs -o FILE")
			}
			o.Image, o.Args = args[0], args[1:]
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			stdio := processIO(o.Interactive)
			p, code, err := r.Record(cmd.Context(), o, stdio)
			g.exitCode = code
			if err != nil {
				return err
			}
			data, err := p.Marshal()
			if err != nil {
				return err
			}
			if err := writeOut(cmd, out, data); err != nil {
				return err
			}
			oci, err := p.ToOCI(nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "secrun: recorded %d syscalls into %s (workload exit status %d)\n", len(seccomp.Allowed(oci)), out, code)
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	bindRunFlags(c.Flags(), &o)
	c.Flags().StringVarP(&out, "output", "o", "", "write the profile to FILE")
	return c
}

func newAppArmorCmd(g *globals) *cobra.Command {
	var o runner.RunOptions
	c := &cobra.Command{
		Use:   "apparmor [run flags] IMAGE [CMD [ARG...]]",
		Short: "Print the AppArmor profile secrun generates for this container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Image, o.Args = args[0], args[1:]
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			plan, err := r.PlanOnly(cmd.Context(), o)
			if err != nil {
				return err
			}
			name := "secrun-default"
			if o.Name != "" {
				name = profiles.AppArmorProfilePrefix + o.Name
			}
			text, err := profiles.RenderAppArmor(name, plan.Spec)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), text)
			return err
		},
	}
	c.Flags().SetInterspersed(false)
	bindRunFlags(c.Flags(), &o)
	return c
}
