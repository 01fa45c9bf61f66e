package runcfront_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/secrun/secrun/runner/runcfront"
)

// TestParseArgs reads the command lines engines really send (captured from
// Docker 20.10's containerd shim, podman 4.3's conmon and ctr 1.6) and the
// corners of runc's own parser.
func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		command string
		kind    runcfront.Kind
		help    bool
		global  runcfront.Global
		create  *runcfront.CreateArgs
		exec    *runcfront.ExecArgs
		// forward is what the real runtime receives (default: args).
		forward []string
		config  string
	}{
		{
			name:    "containerd shim create",
			args:    []string{"--root", "/run/containerd/runc/moby", "--log", "/b/log.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "abc"},
			command: "create", kind: runcfront.Checked,
			global: runcfront.Global{Root: "/run/containerd/runc/moby", Log: "/b/log.json", LogFormat: "json", Rootless: "auto"},
			create: &runcfront.CreateArgs{ID: "abc", Bundle: "/b", PidFile: "/b/init.pid"},
		},
		{
			name:    "conmon create with systemd cgroups and console",
			args:    []string{"--systemd-cgroup", "create", "--bundle", "/u", "--pid-file", "/u/pidfile", "--console-socket", "/u/c.sock", "--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "id1"},
			command: "create", kind: runcfront.Checked,
			global: runcfront.Global{LogFormat: "text", SystemdCgroup: true, Rootless: "auto"},
			create: &runcfront.CreateArgs{ID: "id1", Bundle: "/u", PidFile: "/u/pidfile", ConsoleSocket: "/u/c.sock", NoPivot: true, NoNewKeyring: true, PreserveFDs: 2},
		},
		{
			name:    "run with short flags after the id",
			args:    []string{"run", "id3", "-b", "/x", "-d", "--keep"},
			command: "run", kind: runcfront.Checked,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"},
			create: &runcfront.CreateArgs{ID: "id3", Bundle: "/x", Detach: true, Keep: true},
		},
		{
			name:    "single-dash long flags",
			args:    []string{"-root", "/r", "-log-format=json", "create", "-bundle", "/x", "id4"},
			command: "create", kind: runcfront.Checked,
			global: runcfront.Global{Root: "/r", LogFormat: "json", Rootless: "auto"},
			create: &runcfront.CreateArgs{ID: "id4", Bundle: "/x"},
		},
		{
			name:    "shim exec with a process file",
			args:    []string{"--root", "/r", "--log", "/b/log.json", "--log-format", "json", "exec", "--process", "/tmp/runc-process1", "--detach", "--pid-file", "/b/e.pid", "abc"},
			command: "exec", kind: runcfront.Checked,
			global: runcfront.Global{Root: "/r", Log: "/b/log.json", LogFormat: "json", Rootless: "auto"},
			exec:   &runcfront.ExecArgs{ID: "abc", Process: "/tmp/runc-process1", Detach: true, PidFile: "/b/e.pid", Args: []string{}},
		},
		{
			name:    "exec with flags: everything after the id is the command",
			args:    []string{"exec", "-t", "-e", "A=1", "-e", "B=2", "-u", "1000:1000", "-g", "5", "--cap", "CAP_KILL", "--no-new-privs=false", "abc", "sh", "-c", "--bundle x"},
			command: "exec", kind: runcfront.Checked,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"},
			exec: &runcfront.ExecArgs{ID: "abc", Args: []string{"sh", "-c", "--bundle x"}, TTY: true, Env: []string{"A=1", "B=2"}, User: "1000:1000",
				AdditionalGids: []int64{5}, Caps: []string{"CAP_KILL"}, NoNewPrivs: new(bool)},
		},
		{
			name:    "pass-through commands keep their arguments",
			args:    []string{"--root", "/r", "kill", "--all", "abc", "KILL"},
			command: "kill", kind: runcfront.PassThrough,
			global: runcfront.Global{Root: "/r", LogFormat: "text", Rootless: "auto"},
		},
		{
			name:    "delete --force",
			args:    []string{"delete", "--force", "abc"},
			command: "delete", kind: runcfront.PassThrough,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"},
		},
		{
			name:    "checkpoint is refused",
			args:    []string{"checkpoint", "--image-path", "/i", "abc"},
			command: "checkpoint", kind: runcfront.Refused,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"},
		},
		{
			name:    "restore is refused",
			args:    []string{"restore", "abc"},
			command: "restore", kind: runcfront.Refused,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"},
		},
		{
			name: "version", args: []string{"--version"}, help: true, kind: runcfront.PassThrough,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"},
		},
		{
			name: "help before the command wins", args: []string{"-h", "create", "x"}, help: true, kind: runcfront.PassThrough,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"},
		},
		{
			name: "create --help creates nothing", args: []string{"create", "--help"}, command: "create", kind: runcfront.Checked, help: true,
			global: runcfront.Global{LogFormat: "text", Rootless: "auto"}, create: &runcfront.CreateArgs{},
		},
		{
			name:    "--secrun-config is secrun-runc's and runc never sees it",
			args:    []string{"--secrun-config", "/etc/x.yaml", "--root", "/r", "--secrun-config=/etc/y.yaml", "state", "abc"},
			forward: []string{"--root", "/r", "state", "abc"},
			command: "state", kind: runcfront.PassThrough, config: "/etc/y.yaml",
			global: runcfront.Global{Root: "/r", LogFormat: "text", Rootless: "auto"},
		},
		{
			name:    "a value that looks like our flag is not our flag",
			args:    []string{"--root", "--secrun-config", "state", "abc"},
			command: "state", kind: runcfront.PassThrough,
			global: runcfront.Global{Root: "--secrun-config", LogFormat: "text", Rootless: "auto"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := runcfront.ParseArgs(tc.args)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tc.args, err)
			}
			if inv.Command != tc.command || inv.Kind != tc.kind || inv.Help != tc.help {
				t.Errorf("command %q kind %v help %v, want %q %v %v", inv.Command, inv.Kind, inv.Help, tc.command, tc.kind, tc.help)
			}
			if inv.Global != tc.global {
				t.Errorf("global %+v, want %+v", inv.Global, tc.global)
			}
			if !reflect.DeepEqual(inv.Create, tc.create) {
				t.Errorf("create %+v, want %+v", inv.Create, tc.create)
			}
			if tc.exec != nil || inv.Exec != nil {
				if inv.Exec == nil || tc.exec == nil {
					t.Fatalf("exec %+v, want %+v", inv.Exec, tc.exec)
				}
				got, want := *inv.Exec, *tc.exec
				if (got.NoNewPrivs == nil) != (want.NoNewPrivs == nil) || got.NoNewPrivs != nil && *got.NoNewPrivs != *want.NoNewPrivs {
					t.Errorf("exec no-new-privs %v, want %v", got.NoNewPrivs, want.NoNewPrivs)
				}
				got.NoNewPrivs, want.NoNewPrivs = nil, nil
				if !reflect.DeepEqual(got, want) {
					t.Errorf("exec %+v, want %+v", got, want)
				}
			}
			forward := tc.forward
			if forward == nil {
				forward = tc.args
			}
			if !slices.Equal(inv.Args, forward) {
				t.Errorf("forwarded %q, want %q", inv.Args, forward)
			}
			if inv.ConfigPath != tc.config {
				t.Errorf("config %q, want %q", inv.ConfigPath, tc.config)
			}
			if !inv.Help && inv.Args[inv.CommandIndex] != inv.Command {
				t.Errorf("CommandIndex %d points at %q, not %q", inv.CommandIndex, inv.Args[inv.CommandIndex], inv.Command)
			}
		})
	}
}

// TestParseArgsReorder pins urfave/cli v1's reordering for create and run:
// the id may come first, flags after it still count.
func TestParseArgsReorder(t *testing.T) {
	inv, err := runcfront.ParseArgs([]string{"create", "id2", "--bundle=/x", "--pid-file", "/p"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Create.ID != "id2" || inv.Create.Bundle != "/x" || inv.Create.PidFile != "/p" {
		t.Fatalf("got %+v", inv.Create)
	}
}

// TestParseArgsRefuses lists command lines secrun-runc must not guess at:
// each would otherwise risk passing a container start through unchecked.
func TestParseArgsRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown global flag could take a value", []string{"--future-flag", "create", "--bundle", "/b", "id"}, "flag provided but not defined"},
		{"unknown command", []string{"launch", "id"}, `unknown command "launch"`},
		{"create without id", []string{"create", "--bundle", "/b"}, "exactly one container id"},
		{"create with two ids", []string{"create", "a", "b"}, "exactly one container id"},
		{"two forms of one flag", []string{"create", "--bundle", "/a", "-b", "/b", "id"}, "two forms"},
		{"exec without id", []string{"exec"}, "no container id"},
		{"exec without command", []string{"exec", "abc"}, "no command"},
		{"bad preserve-fds", []string{"create", "--preserve-fds", "x", "id"}, "invalid value"},
		{"unknown create flag", []string{"create", "--privileged", "id"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := runcfront.ParseArgs(tc.args)
			if err == nil {
				t.Fatalf("ParseArgs(%q) = %+v, want an error", tc.args, inv)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// FuzzParseArgs: the parser never panics, never forwards --secrun-config,
// and reading what it forwards again gives the same decision, so the real
// runtime sees the command secrun-runc judged.
func FuzzParseArgs(f *testing.F) {
	seeds := [][]string{
		{"--root", "/r", "--log", "/l", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id"},
		{"run", "id", "-d", "-b", "/x"},
		{"exec", "--process", "/p", "--detach", "id"},
		{"exec", "-t", "id", "sh", "-c", "x"},
		{"--secrun-config=/c", "state", "id"},
		{"--debug", "--systemd-cgroup", "delete", "--force", "id"},
		{"create", "--", "id"},
		{"-", "create"},
		{"--root=", "--", "create", "x"},
	}
	for _, s := range seeds {
		f.Add(strings.Join(s, "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		inv, err := runcfront.ParseArgs(args)
		if err != nil {
			return
		}
		for _, a := range inv.Args[:inv.CommandIndex] {
			if n := strings.TrimLeft(a, "-"); strings.HasPrefix(n, runcfront.ConfigFlag) && strings.HasPrefix(a, "-") {
				// A value of another flag may look like it; only flags count.
				again, err := runcfront.ParseArgs(inv.Args)
				if err != nil || again.ConfigPath != "" {
					t.Fatalf("forwarded %q still carries --%s", inv.Args, runcfront.ConfigFlag)
				}
			}
		}
		again, err := runcfront.ParseArgs(inv.Args)
		if err != nil {
			t.Fatalf("forwarded %q does not parse: %v", inv.Args, err)
		}
		if again.Command != inv.Command || again.Kind != inv.Kind || again.Help != inv.Help ||
			!reflect.DeepEqual(again.Create, inv.Create) || again.Global != inv.Global {
			t.Fatalf("forwarded %q reads as %+v, judged as %+v", inv.Args, again, inv)
		}
	})
}
