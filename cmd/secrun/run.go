package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secrun/secrun/runner"
)

// bindRunFlags binds Docker's run flags (the contract of ARCHITECTURE.md).
// `secrun run`, `secrun profile record` and `secrun profile apparmor` share them.
func bindRunFlags(f *pflag.FlagSet, o *runner.RunOptions) {
	f.StringVar(&o.Name, "name", "", "assign a name to the container")
	f.BoolVar(&o.Remove, "rm", false, "remove the container when it exits")
	f.BoolVarP(&o.Detach, "detach", "d", false, "run in the background and print the container id")
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (NAME=VALUE, or NAME to pass yours)")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&o.User, "user", "u", "", "user inside the container: name|uid[:group|gid] (default: the image's USER, else 65534)")
	f.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind a host path: SRC:DST[:ro|rw|z|Z] (SRC must exist and not be a symlink)")
	f.StringArrayVar(&o.Mounts, "mount", nil, "type=bind,source=SRC,target=DST[,readonly] or type=tmpfs,target=DST[,tmpfs-size=N]")
	f.StringArrayVar(&o.Tmpfs, "tmpfs", nil, "mount a tmpfs: DST[:size=N,exec,...]")
	f.BoolVar(&o.ReadOnly, "read-only", true, "mount the root filesystem read-only (--read-only=false to relax)")
	f.StringArrayVar(&o.CapAdd, "cap-add", nil, "add a capability (none by default)")
	f.StringArrayVar(&o.CapDrop, "cap-drop", nil, "drop a capability")
	f.BoolVar(&o.Privileged, "privileged", false, "give the container every capability and no seccomp filter (denied by the default policy)")
	f.StringArrayVar(&o.SecurityOpt, "security-opt", nil, "seccomp=FILE|unconfined, no-new-privileges[=true|false], apparmor=NAME, label=..., landlock=...")
	f.StringVar(&o.Network, "network", "none", "network: none (loopback only) or host")
	f.StringVar(&o.Userns, "userns", "", "user namespace: private (default, a per-container id range; rootless, your uid and /etc/subuid ranges) or host (root only)")
	f.StringVar(&o.Memory, "memory", "", "memory limit, e.g. 256m (default 512m)")
	f.Float64Var(&o.CPUs, "cpus", 0, "CPU limit in CPUs, e.g. 0.5")
	f.Int64Var(&o.PidsLimit, "pids-limit", 0, "process limit (default 512; -1 for none)")
}

func newRunCmd(g *globals) *cobra.Command {
	var o runner.RunOptions
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [CMD [ARG...]]",
		Short: "Run a command in a new, hardened container",
		Long: `Run IMAGE under the hardened defaults: every capability dropped, no new
privileges, read-only root, seccomp, its own user namespace and network
(loopback only), memory and pids limits. The image's signature is checked and
the policy must allow the container before it starts.

Exit status: the container's, or 125 (secrun failed), 126 (denied by policy or
signature), 127 (command not found in the image).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Image, o.Args = args[0], args[1:]
			r, closeFn, err := g.runner(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			stdio := processIO(o.Interactive)
			code, err := r.Run(cmd.Context(), o, stdio)
			g.exitCode = code
			return err
		},
	}
	c.Flags().SetInterspersed(false)
	bindRunFlags(c.Flags(), &o)
	return c
}

// processIO is the stdio a foreground container or exec'd process gets:
// secrun's own stdout and stderr, and its stdin only with -i.
func processIO(interactive bool) runner.RunIO {
	stdio := runner.RunIO{Stdout: os.Stdout, Stderr: os.Stderr}
	if interactive {
		stdio.Stdin = os.Stdin
	}
	return stdio
}
