package wrapper_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/caps"
	"github.com/secrun/secrun/runner/wrapper"
	"github.com/secrun/secrun/seccomp"
)

func readBundle(t *testing.T, spec string) *wrapper.Bundle {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.json"), spec, 0o640)
	b, err := wrapper.ReadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHardenPatchesJSON: hardening patches the engine's JSON; fields this
// build does not know and every value it does not touch reach runc as the
// engine wrote them.
func TestHardenPatchesJSON(t *testing.T) {
	in := `{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"futureProcessField":{"x":1}},` +
		`"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"}],"resources":{"memory":{"limit":9223372036854775807}},"futureLinuxField":[1,2]},` +
		`"futureTopField":"kept","annotations":{"a":"b"}}`
	b := readBundle(t, in)
	if err := b.Harden(wrapper.Hardening{Seccomp: "default", NoNewPrivileges: true}); err != nil {
		t.Fatal(err)
	}
	if !b.Adjusted() || len(b.Changes) != 2 {
		t.Fatalf("changes %v", b.Changes)
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.Final))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	linux := raw["linux"].(map[string]any)
	proc := raw["process"].(map[string]any)
	if raw["futureTopField"] != "kept" || linux["futureLinuxField"] == nil || proc["futureProcessField"] == nil {
		t.Errorf("unknown fields lost: %s", b.Final)
	}
	if got := linux["resources"].(map[string]any)["memory"].(map[string]any)["limit"].(json.Number); got != "9223372036854775807" {
		t.Errorf("memory limit re-encoded as %s", got)
	}
	if proc["noNewPrivileges"] != true || linux["seccomp"] == nil {
		t.Errorf("hardening missing: %s", b.Final)
	}
	ann := raw["annotations"].(map[string]any)
	if ann["a"] != "b" || ann[wrapper.AnnotationOriginal] != hash([]byte(in)) {
		t.Errorf("annotations %v", ann)
	}
	if b.Spec.Linux.Seccomp == nil || b.OrigSpec.Linux.Seccomp != nil {
		t.Error("Spec and OrigSpec do not decode the final and the original")
	}
}

// TestHardenCaseVariants: encoding/json (and so runc) reads "Linux" or
// "SECCOMP" into the same fields; the patch must not leave a variant that
// runc would read instead of secrun-runc's value.
func TestHardenCaseVariants(t *testing.T) {
	in := `{"process":{"args":["sh"],"cwd":"/","NoNewPrivileges":false},"Linux":{"namespaces":[]},"root":{"path":"rootfs"}}`
	b := readBundle(t, in)
	if err := b.Harden(wrapper.Hardening{Seccomp: "default", NoNewPrivileges: true}); err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b.Final, &s); err != nil {
		t.Fatal(err)
	}
	if s.Linux == nil || s.Linux.Seccomp == nil || !s.Process.NoNewPrivileges {
		t.Fatalf("runc would not see the hardening in %s", b.Final)
	}
	if bytes.Contains(b.Final, []byte(`"Linux"`)) || bytes.Contains(b.Final, []byte(`"NoNewPrivileges"`)) {
		t.Errorf("a case variant survived: %s", b.Final)
	}
}

func TestHardenLeavesWhatIsThere(t *testing.T) {
	in := `{"process":{"args":["sh"],"cwd":"/","noNewPrivileges":true},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}},"root":{"path":"rootfs"}}`
	b := readBundle(t, in)
	if err := b.Harden(wrapper.Hardening{Seccomp: "default", NoNewPrivileges: true}); err != nil {
		t.Fatal(err)
	}
	if b.Adjusted() || len(b.Changes) != 0 {
		t.Fatalf("changed a spec that has a seccomp profile and no_new_privs: %v", b.Changes)
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "config.json.orig")); !os.IsNotExist(err) {
		t.Errorf("config.json.orig written: %v", err)
	}
}

// TestBundleWrite keeps the original, replaces config.json by rename with
// the same mode, and reads a reused bundle back to the engine's original.
func TestBundleWrite(t *testing.T) {
	in := `{"process":{"args":["sh"],"cwd":"/"},"linux":{},"root":{"path":"rootfs"}}`
	b := readBundle(t, in)
	if err := b.Harden(wrapper.Hardening{Seccomp: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("config.json mode %v, want the engine's 0640", st.Mode().Perm())
	}
	got, err := os.ReadFile(b.Path)
	if err != nil || !bytes.Equal(got, b.Final) {
		t.Fatalf("config.json is not the final spec: %v", err)
	}
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("bundle holds %v, want config.json and config.json.orig only", entries)
	}
	again, err := wrapper.ReadBundle(b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Orig) != in {
		t.Errorf("a reused bundle reads as original %s", again.Orig)
	}
	// A forged marker without the matching original is ignored: the file on
	// disk is the original.
	forged := `{"annotations":{"` + wrapper.AnnotationOriginal + `":"sha256:00"},"process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}}`
	writeFile(t, b.Path, forged, 0o640)
	again, err = wrapper.ReadBundle(b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Orig) != forged {
		t.Errorf("forged marker honoured: original %s", again.Orig)
	}
}

// TestDefaultSeccompPermitsRuntime pins why DefaultSeccomp may skip
// seccomp.EnsureRuntimeSyscalls: the built-in profile already lets runc
// finish starting the container, with no capability, Docker's set or every
// capability, with and without no_new_privs.
func TestDefaultSeccompPermitsRuntime(t *testing.T) {
	for _, cs := range [][]string{nil, caps.DockerDefault, caps.Known()} {
		s, err := wrapper.DefaultSeccomp(cs)
		if err != nil {
			t.Fatal(err)
		}
		if s.DefaultAction != specs.ActErrno || len(s.Syscalls) == 0 {
			t.Fatalf("default profile %+v", s)
		}
		for _, nnp := range []bool{true, false} {
			if added := seccomp.EnsureRuntimeSyscallsFor(s, nnp); len(added) > 0 {
				t.Errorf("%d capabilities, no_new_privs %v: the default profile lacks %v, which runc needs; restore the EnsureRuntimeSyscallsFor call in DefaultSeccomp or fix the profile", len(cs), nnp, added)
			}
		}
		for _, r := range s.Syscalls {
			for _, n := range r.Names {
				if strings.HasPrefix(n, "io_uring") && r.Action == specs.ActAllow {
					t.Errorf("the default profile allows %s", n)
				}
			}
		}
	}
}

// FuzzHarden: any config.json either fails to read or hardens into a spec
// that decodes, carries the default filter when asked, and keeps the
// original recoverable.
func FuzzHarden(f *testing.F) {
	for _, s := range []string{
		`{"process":{"args":["sh"],"cwd":"/"},"linux":{},"root":{"path":"rootfs"}}`,
		`{"process":null,"linux":null}`,
		`{"Process":{"NoNewPrivileges":false},"LINUX":{"Seccomp":null}}`,
		`{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}},"annotations":null}`,
		`[]`, `{"annotations":{"run.secrun.original-spec":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := wrapper.ReadBundle(dir)
		if err != nil {
			return
		}
		if err := b.Harden(wrapper.Hardening{Seccomp: "default", NoNewPrivileges: true}); err != nil {
			return
		}
		var s specs.Spec
		if err := json.Unmarshal(b.Final, &s); err != nil {
			t.Fatalf("final spec does not decode: %v\n%s", err, b.Final)
		}
		if s.Linux == nil || s.Linux.Seccomp == nil {
			t.Fatalf("no seccomp filter in the final spec %s", b.Final)
		}
		if s.Process != nil && !s.Process.NoNewPrivileges {
			t.Fatalf("no_new_privs not set in %s", b.Final)
		}
		if err := b.Write(); err != nil {
			t.Fatal(err)
		}
		again, err := wrapper.ReadBundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Orig, data) {
			t.Fatalf("original not recovered: %q, want %q", again.Orig, data)
		}
	})
}
