package profiles

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// InitBinaryEnv names the environment variable that points at secrun-init.
const InitBinaryEnv = "SECRUN_INIT"

// FindInitBinary returns the absolute host path of the secrun-init binary:
// $SECRUN_INIT, else secrun-init next to the running executable, else
// secrun-init on PATH. The binary is checked to be a static ELF executable,
// because it runs inside the container's root file system, where the host's
// dynamic loader and libc are not.
func FindInitBinary() (string, error) {
	if p := os.Getenv(InitBinaryEnv); p != "" {
		return checkInitBinary(p, "$"+InitBinaryEnv)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "secrun-init")
		if _, err := os.Stat(p); err == nil {
			return checkInitBinary(p, "next to "+self)
		}
	}
	p, err := exec.LookPath("secrun-init")
	if err != nil {
		return "", fmt.Errorf("secrun-init not found ($%s unset, not next to secrun, not on PATH): build it with `CGO_ENABLED=0 go build ./cmd/secrun-init`", InitBinaryEnv)
	}
	return checkInitBinary(p, "on PATH")
}

// checkInitBinary checks p is a static executable and returns it absolute.
func checkInitBinary(p, where string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("secrun-init %s (%s): %w", p, where, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("secrun-init %s (%s): %w", abs, where, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("secrun-init %s (%s) is not an executable file", abs, where)
	}
	f, err := elf.Open(abs)
	if err != nil {
		return "", fmt.Errorf("secrun-init %s (%s) is not an ELF executable: %w", abs, where, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", errors.New("secrun-init " + abs + " (" + where + ") is dynamically linked; rebuild it with CGO_ENABLED=0 so it runs inside any container")
		}
	}
	return abs, nil
}
