package runcfront

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Where secrun-runc finds its configuration.
const (
	DefaultConfigPath = "/etc/secrun/runtime.yaml"
	ConfigEnv         = "SECRUN_RUNTIME_CONFIG"
)

// ConfigPath is the config file to read: $SECRUN_RUNTIME_CONFIG, else
// /etc/secrun/runtime.yaml.
func ConfigPath(getenv func(string) string) string {
	if p := getenv(ConfigEnv); p != "" {
		return p
	}
	return DefaultConfigPath
}

// runtimeDirs are searched for runc after PATH: engines run their runtime
// with a scrubbed environment (podman's cleanup process has no PATH).
var runtimeDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// FindRuntime returns the real runtime: the configured one, else runc
// beside self, else runc on PATH or in the usual directories. It never
// returns self: a config that points secrun-runc at itself would loop.
func FindRuntime(configured, self string) (string, error) {
	candidates := []string{}
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("real OCI runtime %q not found: set runtime: in the secrun-runc config to runc's path", configured)
		}
		candidates = append(candidates, p)
	} else {
		if self != "" {
			candidates = append(candidates, filepath.Join(filepath.Dir(self), "runc"))
		}
		if p, err := exec.LookPath("runc"); err == nil {
			candidates = append(candidates, p)
		}
		for _, d := range runtimeDirs {
			candidates = append(candidates, filepath.Join(d, "runc"))
		}
	}
	for _, p := range candidates {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			continue
		}
		if self != "" && sameFile(p, self) {
			if configured != "" {
				return "", fmt.Errorf("the real OCI runtime %s is secrun-runc itself: set runtime: in the secrun-runc config to runc's path", p)
			}
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		return abs, nil
	}
	return "", errors.New("real OCI runtime runc not found: set runtime: in the secrun-runc config (see docs/secrun-runc.md)")
}

func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(sa, sb)
}
