package profiles

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// secrun can hand a container's seccomp filter to secrun-init instead of
// runc: secrun compiles the profile to BPF once (and caches it), and
// secrun-init loads the program right before it execs the container's
// command, so runc does not compile the same profile on every start. The
// spec runc gets then has no linux.seccomp; the profile it stands for is
// kept in the AnnotationInitSeccomp annotation, for whoever reads the
// declared config (secrun exec's policy input, secrun audit).
const (
	// InitSeccompPath is where the compiled filter is bind-mounted.
	InitSeccompPath = "/.secrun/seccomp.bpf"
	// InitSeccompFlag and InitSeccompFlagsFlag are secrun-init's options.
	InitSeccompFlag      = "--seccomp="
	InitSeccompFlagsFlag = "--seccomp-flags="
	// AnnotationInitSeccomp holds the loaded profile (OCI JSON).
	AnnotationInitSeccomp = "run.secrun.seccomp"
)

// InitLoadsSeccomp reports whether the spec's process runs under
// secrun-init with a seccomp filter: args start with InitSeccompPath's
// loader and its --seccomp option before "--".
func InitLoadsSeccomp(spec *specs.Spec) bool {
	if spec == nil || spec.Process == nil || len(spec.Process.Args) == 0 || spec.Process.Args[0] != LandlockInitPath {
		return false
	}
	end := slices.Index(spec.Process.Args, "--")
	if end < 0 {
		return false
	}
	return slices.Contains(spec.Process.Args[1:end], InitSeccompFlag+InitSeccompPath)
}

// DeclaredSeccomp puts back the profile a secrun-init-loaded filter stands
// for into spec.linux.seccomp, when the spec is one secrun wrote that way.
// A spec that says secrun-init loads a filter but carries no readable
// profile is an error: its declared config is unknown.
func DeclaredSeccomp(spec *specs.Spec) error {
	if !InitLoadsSeccomp(spec) || (spec.Linux != nil && spec.Linux.Seccomp != nil) {
		return nil
	}
	raw, ok := spec.Annotations[AnnotationInitSeccomp]
	if !ok {
		return fmt.Errorf("the process runs under secrun-init with a seccomp filter, but the spec has no %s annotation naming its profile", AnnotationInitSeccomp)
	}
	var sc specs.LinuxSeccomp
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return fmt.Errorf("annotation %s: %w", AnnotationInitSeccomp, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Linux.Seccomp = &sc
	return nil
}
