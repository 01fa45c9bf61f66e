package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/policy"
)

const testdata = "../testdata/policy"

// fixture reads one of the realistic inputs in testdata/policy (see
// gen_fixtures.py there for what each one is).
func fixture(t testing.TB, name string) *policy.Input {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in, err := policy.ReadInput(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return in
}

var (
	enginesMu sync.Mutex
	engines   = map[string]*policy.Engine{}
)

// builtin compiles a built-in policy once per test binary, as the runner does
// once per process.
func builtin(t testing.TB, name string) *policy.Engine {
	t.Helper()
	enginesMu.Lock()
	defer enginesMu.Unlock()
	if e, ok := engines[name]; ok {
		return e
	}
	e, err := policy.Load(context.Background(), name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	engines[name] = e
	return e
}

func eval(t testing.TB, e *policy.Engine, in *policy.Input) policy.Decision {
	t.Helper()
	d, err := e.Eval(context.Background(), in)
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	return d
}

func ids(d policy.Decision) []string {
	var out []string
	for _, v := range d.Violations {
		if !slices.Contains(out, v.ID) {
			out = append(out, v.ID)
		}
	}
	slices.Sort(out)
	return out
}

func violationsOf(d policy.Decision, id string) []policy.Violation {
	var out []policy.Violation
	for _, v := range d.Violations {
		if v.ID == id {
			out = append(out, v)
		}
	}
	return out
}

func dump(d policy.Decision) string {
	var b strings.Builder
	for _, v := range d.Violations {
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	if d.Reason != "" {
		b.WriteString("\n  reason: " + d.Reason)
	}
	return b.String()
}

// Mutations of an input, each one change a caller could ask for.

type mutation func(*policy.Input)

func apply(in *policy.Input, ms ...mutation) *policy.Input {
	for _, m := range ms {
		m(in)
	}
	return in
}

func dropNS(kind specs.LinuxNamespaceType) mutation {
	return func(in *policy.Input) {
		in.Spec.Linux.Namespaces = slices.DeleteFunc(in.Spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == kind })
	}
}

func joinNS(kind specs.LinuxNamespaceType, path string) mutation {
	return func(in *policy.Input) {
		for i, n := range in.Spec.Linux.Namespaces {
			if n.Type == kind {
				in.Spec.Linux.Namespaces[i].Path = path
			}
		}
	}
}

// volume adds a bind volume as the runner would: the request records what
// was asked and what it resolved to, the spec mounts the resolved path.
func volume(src, resolved, dst string) mutation {
	return func(in *policy.Input) {
		in.Request.Volumes = append(in.Request.Volumes, policy.Volume{Source: src, Resolved: resolved, Destination: dst, Type: "bind"})
		in.Spec.Mounts = append(in.Spec.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: resolved, Options: []string{"rbind", "nosuid", "nodev", "rprivate", "rw"}})
	}
}

// specBind adds a bind mount to the spec only, as a bundle from another
// engine carries it.
func specBind(src, dst string) mutation {
	return func(in *policy.Input) {
		in.Spec.Mounts = append(in.Spec.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
	}
}

func caps(set ...string) mutation {
	return func(in *policy.Input) {
		in.Spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: set, Effective: set, Permitted: set}
	}
}

func addBounding(c string) mutation {
	return func(in *policy.Input) {
		if in.Spec.Process.Capabilities == nil {
			in.Spec.Process.Capabilities = &specs.LinuxCapabilities{}
		}
		in.Spec.Process.Capabilities.Bounding = append(in.Spec.Process.Capabilities.Bounding, c)
	}
}

func int64p(v int64) *int64 { return &v }

// dockerSetkeyHook is the hook dockerd 20.10 (Debian 12's docker.io) wrote
// into config.json for `docker run --network none` on the development VM.
var dockerSetkeyHook = specs.Hook{
	Path: "/proc/26856/exe",
	Args: []string{"libnetwork-setkey", "-exec-root=/var/run/docker", "beac18336857e6c78b3c3530248f09a18634201e1911b2ba0b1475995945ee69", "68c4717f6d82"},
}

var evilHook = specs.Hook{Path: "/usr/bin/evil", Args: []string{"evil"}}

// addHook appends h to the spec's hooks of kind (an OCI hook kind).
func addHook(kind string, h specs.Hook) mutation {
	return func(in *policy.Input) {
		if in.Spec.Hooks == nil {
			in.Spec.Hooks = &specs.Hooks{}
		}
		hs := in.Spec.Hooks
		lists := map[string]*[]specs.Hook{
			"prestart":        &hs.Prestart, //nolint:staticcheck // deprecated by the spec, still Docker's
			"createRuntime":   &hs.CreateRuntime,
			"createContainer": &hs.CreateContainer,
			"startContainer":  &hs.StartContainer,
			"poststart":       &hs.Poststart,
			"poststop":        &hs.Poststop,
		}
		l, ok := lists[kind]
		if !ok {
			panic("addHook: unknown hook kind " + kind)
		}
		*l = append(*l, h)
	}
}

// allCaps is every capability of Linux 6.x, as --privileged grants them.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// privilegedSpec turns a spec into what `docker run --privileged` hands the
// runtime: every capability, every device, no seccomp, no AppArmor, no
// masked paths.
func privilegedSpec(in *policy.Input) {
	caps(allCaps...)(in)
	in.Spec.Linux.Seccomp = nil
	in.Spec.Process.ApparmorProfile = "unconfined"
	in.Spec.Linux.MaskedPaths = nil
	in.Spec.Linux.ReadonlyPaths = nil
	in.Spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
}
