package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/profiles"
	"github.com/secrun/secrun/seccomp"
)

// initSeccompFlags are the profile flags secrun-init can pass to seccomp(2).
var initSeccompFlags = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:       unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow: unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}

// initCanLoad reports whether secrun-init can load the spec's seccomp
// filter exactly as runc would: a plain filter (no notify agent), with
// no_new_privs (secrun-init has no privilege to load it otherwise), flags
// seccomp(2) takes from an unprivileged caller, and a default action that
// returns ENOSYS (runc patches the filter to return ENOSYS for syscalls
// newer than the profile unless the default already does; secrun-init
// loads libseccomp's program unpatched).
func initCanLoad(spec *specs.Spec) (flags uint, ok bool) {
	if spec.Process == nil || !spec.Process.NoNewPrivileges || len(spec.Process.Args) == 0 || spec.Linux == nil || spec.Linux.Seccomp == nil {
		return 0, false
	}
	sc := spec.Linux.Seccomp
	if sc.ListenerPath != "" || sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != uint(unix.ENOSYS) {
		return 0, false
	}
	for _, f := range sc.Flags {
		bit, known := initSeccompFlags[f]
		if !known {
			return 0, false
		}
		flags |= bit
	}
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActNotify {
			return 0, false
		}
	}
	return flags, true
}

// seccompByInit returns the spec runc gets when secrun-init loads the
// filter: linux.seccomp removed (and kept in an annotation), the compiled
// program and secrun-init bind-mounted read-only, and the process wrapped
// in secrun-init with --seccomp. It returns nil when the filter must stay
// runc's (see initCanLoad), or secrun-init or libseccomp is not at hand,
// or the spec already mounts something where secrun-init goes: runc then
// loads it as before. spec is not changed.
func (r *Runner) seccompByInit(spec *specs.Spec) (*specs.Spec, map[string]any, error) {
	flags, ok := initCanLoad(spec)
	if !ok {
		return nil, nil, nil
	}
	init, err := profiles.FindInitBinary()
	if err != nil {
		return nil, nil, nil
	}
	profile, err := json.Marshal(spec.Linux.Seccomp)
	if err != nil {
		return nil, nil, err
	}
	bpf, sum, err := r.compiledSeccomp(profile)
	if err != nil {
		// No libseccomp in this build, or it cannot compile the profile:
		// runc loads it (and reports what is wrong with it).
		return nil, nil, nil
	}
	out := *spec
	proc := *spec.Process
	linux := *spec.Linux
	linux.Seccomp = nil
	out.Process, out.Linux = &proc, &linux
	out.Annotations = maps.Clone(spec.Annotations)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[profiles.AnnotationInitSeccomp] = string(profile)
	out.Mounts = slices.Clone(spec.Mounts)
	opts := []string{profiles.InitSeccompFlag + profiles.InitSeccompPath}
	if flags != 0 {
		opts = append(opts, profiles.InitSeccompFlagsFlag+strconv.FormatUint(uint64(flags), 10))
	}
	if proc.Args[0] == profiles.LandlockInitPath {
		// Already under secrun-init (Landlock): add the filter to it.
		proc.Args = slices.Concat(proc.Args[:1], opts, proc.Args[1:])
	} else {
		for _, m := range out.Mounts {
			if m.Destination == profiles.LandlockInitPath || m.Destination == filepath.Dir(profiles.LandlockInitPath) {
				return nil, nil, nil
			}
		}
		proc.Args = slices.Concat([]string{profiles.LandlockInitPath}, opts, []string{"--"}, proc.Args)
		out.Mounts = append(out.Mounts, specs.Mount{Destination: profiles.LandlockInitPath, Type: "bind", Source: init, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	out.Mounts = append(out.Mounts, specs.Mount{Destination: profiles.InitSeccompPath, Type: "bind", Source: bpf, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
	return &out, map[string]any{"seccomp.loader": "secrun-init", "seccomp.bpf": sum}, nil
}

// compiledSeccomp returns the path of the BPF program for profile (OCI
// JSON) in the cache under the root, compiling it with libseccomp on a
// miss, and the program's sha256. The key covers the profile, the
// libseccomp version and the architecture.
func (r *Runner) compiledSeccomp(profile []byte) (path, sum string, err error) {
	key := sha256.New()
	fmt.Fprintf(key, "%s\x00%s\x00", seccomp.LibseccompVersion(), runtime.GOARCH)
	key.Write(profile)
	dir := filepath.Join(r.Root, "cache", "seccomp-bpf")
	path = filepath.Join(dir, hex.EncodeToString(key.Sum(nil))+".bpf")
	prog, err := os.ReadFile(path)
	if err != nil || len(prog) == 0 || len(prog)%8 != 0 {
		var sc specs.LinuxSeccomp
		if err := json.Unmarshal(profile, &sc); err != nil {
			return "", "", err
		}
		if prog, err = seccomp.ExportBPF(&sc); err != nil {
			return "", "", err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", "", err
		}
		if err := writeFileAtomic(path, prog, 0o644); err != nil {
			return "", "", fmt.Errorf("caching the compiled seccomp filter: %w", err)
		}
	}
	s := sha256.Sum256(prog)
	return path, "sha256:" + hex.EncodeToString(s[:]), nil
}
