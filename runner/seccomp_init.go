package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

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
// filter: linux.seccomp removed (and kept in an annotation), and the
// process wrapped in secrun-init with --seccomp. secrun-init and the
// compiled program reach the container in layer, a directory the caller
// puts on top of the rootfs overlay's lower layers (initLayer), so runc
// mounts nothing for them; when secrun-init is already there for Landlock
// (a bind mount), the program is bind-mounted beside it and layer is "".
// It returns a nil spec when the filter must stay runc's (see
// initCanLoad), or secrun-init or libseccomp is not at hand, or the spec
// already mounts something where secrun-init goes: runc then loads it as
// before. spec is not changed.
func (r *Runner) seccompByInit(spec *specs.Spec) (out *specs.Spec, fields map[string]any, layer string, err error) {
	flags, ok := initCanLoad(spec)
	if !ok {
		return nil, nil, "", nil
	}
	init, err := profiles.FindInitBinary()
	if err != nil {
		return nil, nil, "", nil
	}
	profile, err := json.Marshal(spec.Linux.Seccomp)
	if err != nil {
		return nil, nil, "", err
	}
	bpf, sum, err := r.compiledSeccomp(profile)
	if err != nil {
		// No libseccomp in this build, or it cannot compile the profile:
		// runc loads it (and reports what is wrong with it).
		return nil, nil, "", nil
	}
	o := *spec
	proc := *spec.Process
	linux := *spec.Linux
	linux.Seccomp = nil
	o.Process, o.Linux = &proc, &linux
	o.Annotations = maps.Clone(spec.Annotations)
	if o.Annotations == nil {
		o.Annotations = map[string]string{}
	}
	o.Annotations[profiles.AnnotationInitSeccomp] = string(profile)
	opts := []string{profiles.InitSeccompFlag + profiles.InitSeccompPath}
	if flags != 0 {
		opts = append(opts, profiles.InitSeccompFlagsFlag+strconv.FormatUint(uint64(flags), 10))
	}
	fields = map[string]any{"seccomp.loader": "secrun-init", "seccomp.bpf": sum}
	if proc.Args[0] == profiles.LandlockInitPath {
		// Already under secrun-init (Landlock), which is bind-mounted:
		// add the filter to it, bind-mounted beside it.
		proc.Args = slices.Concat(proc.Args[:1], opts, proc.Args[1:])
		o.Mounts = append(slices.Clone(spec.Mounts), specs.Mount{Destination: profiles.InitSeccompPath, Type: "bind", Source: bpf, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
		return &o, fields, "", nil
	}
	for _, m := range spec.Mounts {
		if m.Destination == profiles.LandlockInitPath || m.Destination == filepath.Dir(profiles.LandlockInitPath) {
			return nil, nil, "", nil
		}
	}
	if layer, err = r.initLayer(init, bpf, sum); err != nil {
		return nil, nil, "", err
	}
	proc.Args = slices.Concat([]string{profiles.LandlockInitPath}, opts, []string{"--"}, proc.Args)
	return &o, fields, layer, nil
}

// initLayer returns a directory holding .secrun/init, a copy of the
// secrun-init binary at init, and .secrun/seccomp.bpf, a copy of the
// program at bpf: an overlay layer, cached under the root per secrun-init
// build and program. On top of the rootfs's lower layers it puts both at
// the paths secrun-init's arguments name, read-only like the image. Two
// bind mounts cost runc about 2 ms per start; a layer costs nothing. The
// files are root's: in the container's user namespace they belong to the
// overflow id, executable and readable, never writable.
func (r *Runner) initLayer(init, bpf, bpfSum string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(init, &st); err != nil {
		return "", fmt.Errorf("secrun-init: %w", err)
	}
	key := sha256.New()
	fmt.Fprintf(key, "%s\x00%d:%d:%d:%d.%d:%d.%d\x00%s", init, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, bpfSum)
	parent := filepath.Join(r.Root, "cache", "init-layers")
	dir := filepath.Join(parent, hex.EncodeToString(key.Sum(nil))[:32])
	if _, err := os.Stat(filepath.Join(dir, profiles.LandlockInitPath)); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Mkdir(filepath.Join(tmp, filepath.Dir(profiles.LandlockInitPath)), 0o755); err != nil {
		return "", err
	}
	// Synced before the rename: a crash leaves no torn copy in the cache.
	if err := copyFileSynced(init, filepath.Join(tmp, profiles.LandlockInitPath), 0o755); err != nil {
		return "", fmt.Errorf("caching secrun-init: %w", err)
	}
	if err := copyFileSynced(bpf, filepath.Join(tmp, profiles.InitSeccompPath), 0o644); err != nil {
		return "", fmt.Errorf("caching the compiled seccomp filter: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another secrun made it first.
		if _, serr := os.Stat(filepath.Join(dir, profiles.LandlockInitPath)); serr == nil {
			return dir, nil
		}
		return "", err
	}
	// A new layer means a new secrun-init build or profile: the layers of
	// old ones would pile up (each holds a copy of secrun-init).
	pruneInitLayers(parent, dir, time.Now().Add(-initLayerGrace))
	return dir, nil
}

// mountinfoEscape writes a path as /proc/self/mountinfo does, in mount
// points and in overlayfs's lowerdir option.
var mountinfoEscape = strings.NewReplacer(`\\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`, ",", `\054`)

// initLayerGrace is how long an unused layer is kept: a secrun that found
// it in the cache a moment ago may be about to mount it.
const initLayerGrace = time.Hour

// pruneInitLayers removes the layers (and abandoned temporary directories)
// under parent other than keep that were last changed before cutoff and
// that no mounted overlay on this host uses (/proc/self/mountinfo). It is
// best effort: what it cannot check or remove stays.
func pruneInitLayers(parent, keep string, cutoff time.Time) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(parent, e.Name())
		if dir == keep || bytes.Contains(mi, []byte(mountinfoEscape.Replace(dir))) {
			continue
		}
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		os.RemoveAll(dir)
	}
}

func copyFileSynced(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	return errors.Join(cerr, out.Sync(), out.Close(), os.Chmod(dst, perm))
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
