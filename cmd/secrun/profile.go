package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/profiles"
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
