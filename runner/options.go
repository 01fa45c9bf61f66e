package runner

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/secrun/secrun/policy"
)

// RunOptions is a `secrun run` request: Docker's flags, parsed but not yet
// interpreted. The CLI fills it; Plan turns it into a spec.
type RunOptions struct {
	Image string
	// Args replaces the image's Cmd when not empty.
	Args []string

	Name        string
	Remove      bool // --rm
	Detach      bool // -d
	Interactive bool // -i
	TTY         bool // -t
	Env         []string
	Workdir     string
	User        string
	Volumes     []string // -v SRC:DST[:ro|rw|z|Z]
	Mounts      []string // --mount type=bind|tmpfs,...
	Tmpfs       []string // --tmpfs DST[:size=N,...]
	ReadOnly    bool     // --read-only (default true)
	CapAdd      []string
	CapDrop     []string
	Privileged  bool
	SecurityOpt []string
	Network     string // none (default) or host
	Userns      string // "" (a private mapped range) or host
	Memory      string // --memory, e.g. 256m
	CPUs        float64
	PidsLimit   int64 // 0: the default; -1: unlimited
}

// Defaults applied when a request leaves a limit unset: a container always has
// a memory and a pids limit unless it asks for none explicitly.
const (
	DefaultMemory    = 512 << 20
	DefaultPidsLimit = 512
	DefaultTmpSize   = 64 << 20
	// NonRootUID is the identity used when the image names no USER.
	NonRootUID = 65534
)

// securityOpts is the parsed form of --security-opt.
type securityOpts struct {
	Seccomp         string // "default", "unconfined" or a file path
	NoNewPrivileges bool
	AppArmor        string
	Label           []string
	Landlock        []string
}

func parseSecurityOpts(in []string) (securityOpts, error) {
	so := securityOpts{Seccomp: "default", NoNewPrivileges: true}
	for _, o := range in {
		k, v, hasV := strings.Cut(o, "=")
		if !hasV {
			// Docker also accepts "key:value".
			k, v, hasV = strings.Cut(o, ":")
		}
		switch k {
		case "seccomp":
			if v == "" {
				return so, errors.New("--security-opt seccomp needs a value: a profile file or unconfined")
			}
			so.Seccomp = v
		case "no-new-privileges":
			if !hasV || v == "" {
				so.NoNewPrivileges = true
				continue
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return so, fmt.Errorf("--security-opt no-new-privileges=%q: want true or false", v)
			}
			so.NoNewPrivileges = b
		case "apparmor":
			if v == "" {
				return so, errors.New("--security-opt apparmor needs a profile name")
			}
			so.AppArmor = v
		case "label":
			so.Label = append(so.Label, v)
		case "landlock":
			so.Landlock = append(so.Landlock, v)
		default:
			return so, fmt.Errorf("unknown --security-opt %q: want seccomp=, no-new-privileges, apparmor=, label= or landlock=", o)
		}
	}
	return so, nil
}

// ParseMemory parses Docker-style sizes: 512, 64k, 256m, 1g (binary units).
func ParseMemory(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, strings.TrimSuffix(t, "g")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid --memory %q: want a size such as 256m or 1g", s)
	}
	return n * mult, nil
}

// volume is one host path made visible in the container.
type volume struct {
	policy.Volume
	Relabel string // "", "z" (shared) or "Z" (private)
	Size    int64  // tmpfs size
	Options []string
}

// parseVolume parses -v SRC:DST[:OPTS]. The source must exist and be given as
// its real path: a source that resolves through a symlink is refused, because
// what is checked (the name) must be what is mounted (the target).
func parseVolume(spec string) (volume, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return volume{}, fmt.Errorf("invalid -v %q: want SRC:DST[:ro|rw|z|Z]", spec)
	}
	v := volume{Volume: policy.Volume{Source: parts[0], Destination: parts[1], Type: "bind"}}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				v.ReadOnly = true
			case "rw":
				v.ReadOnly = false
			case "z", "Z":
				v.Relabel = o
			default:
				return volume{}, fmt.Errorf("invalid -v %q: unknown option %q (want ro, rw, z or Z)", spec, o)
			}
		}
	}
	return v, checkBind(&v, "-v "+spec)
}

func checkBind(v *volume, what string) error {
	if !filepath.IsAbs(v.Source) {
		return fmt.Errorf("%s: source %q must be an absolute host path (named volumes are not supported)", what, v.Source)
	}
	if !path.IsAbs(v.Destination) {
		return fmt.Errorf("%s: destination %q must be an absolute path", what, v.Destination)
	}
	resolved, err := filepath.EvalSymlinks(v.Source)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: source %s does not exist", what, v.Source)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	v.Resolved = resolved
	if resolved != filepath.Clean(v.Source) {
		return fmt.Errorf("%s: source %s resolves through a symlink to %s: name the real path", what, v.Source, resolved)
	}
	v.Destination = path.Clean(v.Destination)
	return nil
}

// parseMount parses --mount type=bind|tmpfs,source=,target=,readonly,tmpfs-size=.
func parseMount(spec string) (volume, error) {
	v := volume{}
	for _, kv := range strings.Split(spec, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			v.Type = val
		case "source", "src":
			v.Source = val
		case "target", "destination", "dst":
			v.Destination = val
		case "readonly", "ro":
			v.ReadOnly = val == "" || val == "true" || val == "1"
		case "tmpfs-size":
			n, err := ParseMemory(val)
			if err != nil {
				return v, fmt.Errorf("--mount %q: bad tmpfs-size", spec)
			}
			v.Size = n
		default:
			return v, fmt.Errorf("--mount %q: unknown key %q", spec, k)
		}
	}
	switch v.Type {
	case "bind":
		return v, checkBind(&v, "--mount "+spec)
	case "tmpfs":
		if !path.IsAbs(v.Destination) {
			return v, fmt.Errorf("--mount %q: target must be an absolute path", spec)
		}
		if v.Size == 0 {
			v.Size = DefaultTmpSize
		}
		return v, nil
	default:
		return v, fmt.Errorf("--mount %q: type must be bind or tmpfs", spec)
	}
}

// parseTmpfs parses --tmpfs DST[:size=N,mode=...].
func parseTmpfs(spec string) (volume, error) {
	dst, opts, _ := strings.Cut(spec, ":")
	if !path.IsAbs(dst) {
		return volume{}, fmt.Errorf("--tmpfs %q: destination must be an absolute path", spec)
	}
	v := volume{Volume: policy.Volume{Destination: path.Clean(dst), Type: "tmpfs"}, Size: DefaultTmpSize}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			k, val, _ := strings.Cut(o, "=")
			switch k {
			case "size":
				n, err := ParseMemory(val)
				if err != nil {
					return v, fmt.Errorf("--tmpfs %q: bad size", spec)
				}
				v.Size = n
			case "exec", "noexec", "ro", "rw", "mode", "uid", "gid":
				v.Options = append(v.Options, o)
			default:
				return v, fmt.Errorf("--tmpfs %q: unknown option %q", spec, o)
			}
		}
	}
	return v, nil
}
