package seccomp_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/secrun/secrun/seccomp"
)

// fixtures are the valid profiles under testdata/seccomp.
var fixtures = []string{"docker-default.json", "old-format.json", "conditional.json"}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "seccomp", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// normalize decodes JSON generically and drops null members, empty arrays
// and a zero valueTwo: Docker's own writer leaves those out, so a member
// written that way and one left out mean the same.
func normalize(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	var strip func(any) any
	strip = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if a, ok := e.([]any); e == nil || (ok && len(a) == 0) || (k == "valueTwo" && e == float64(0)) {
					delete(x, k)
					continue
				}
				x[k] = strip(e)
			}
		case []any:
			for i := range x {
				x[i] = strip(x[i])
			}
		}
		return v
	}
	return strip(v)
}

func TestRoundTripIsLossless(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			orig := fixture(t, name)
			p, err := seccomp.Parse(orig)
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := normalize(t, out), normalize(t, orig); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the profile\n got: %s\nwant: %s", out, orig)
			}
			again, err := seccomp.Parse(out)
			if err != nil {
				t.Fatalf("re-parsing own output: %v", err)
			}
			out2, err := again.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(out2) != string(out) {
				t.Errorf("second round trip differs from first:\n%s\n%s", out, out2)
			}
		})
	}
}

func TestUnknownFieldsKept(t *testing.T) {
	p, err := seccomp.Parse(fixture(t, "old-format.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Extra["x-generator"]); got != `{"tool":"hand-written","version":1}` {
		t.Errorf("top-level unknown field = %q", got)
	}
	if got := string(p.Syscalls[1].Extra["x-reason"]); got != `"stdout"` {
		t.Errorf("rule unknown field = %q", got)
	}
	if p.Syscalls[0].Name != "read" || p.Syscalls[0].Names != nil {
		t.Errorf("legacy name not kept as written: %+v", p.Syscalls[0])
	}
}

// A member spelled in another case is decoded by encoding/json; it must
// not also be kept (and written twice) as an unknown field.
func TestCaseInsensitiveMembersNotDuplicated(t *testing.T) {
	p, err := seccomp.Parse([]byte(`{"DefaultAction":"SCMP_ACT_ALLOW","Syscalls":[{"Names":["getpid"],"Action":"SCMP_ACT_ERRNO"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Extra) != 0 || len(p.Syscalls[0].Extra) != 0 {
		t.Errorf("known members kept as extra: %v %v", p.Extra, p.Syscalls[0].Extra)
	}
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(strings.ToLower(string(out)), `"defaultaction"`) != 1 {
		t.Errorf("defaultAction written twice:\n%s", out)
	}
}

var invalidProfiles = []struct {
	name, json, want string
}{
	{"not json", `{`, "seccomp profile: invalid JSON"},
	{"trailing garbage", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]} x`, "invalid JSON"},
	{"no default action", `{"syscalls":[]}`, "defaultAction: missing"},
	{"bad default action", `{"defaultAction":"SCMP_ACT_MAYBE"}`, `defaultAction: unknown action "SCMP_ACT_MAYBE"`},
	{"notify default", `{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/a"}`, "defaultAction: SCMP_ACT_NOTIFY cannot be the default"},
	{"errno on allow default", `{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}`, "defaultErrnoRet: errnoRet is set but action SCMP_ACT_ALLOW"},
	{"errno too big", `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}`, "defaultErrnoRet: errnoRet 5000 out of range"},
	{"unknown arch", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}`, `architectures[0]: unknown architecture "SCMP_ARCH_Z80"`},
	{"unknown sub arch", `{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","x32"]}]}`, `archMap[0].subArchitectures[1]: unknown architecture "x32"`},
	{"arches and archMap", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, "archMap: both architectures and archMap"},
	{"unknown flag", `{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_FAST"]}`, `flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FAST"`},
	{"relative listener", `{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"agent.sock"}`, `listenerPath: "agent.sock" is not an absolute path`},
	{"notify without listener", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_NOTIFY"}]}`, "listenerPath: rules use SCMP_ACT_NOTIFY"},
	{"notify write", `{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/a","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}`, "syscalls[0]: SCMP_ACT_NOTIFY cannot be used for write"},
	{"unknown syscall", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["getpid","openatt"],"action":"SCMP_ACT_ALLOW"}]}`, `syscalls[1]: unknown syscall "openatt"`},
	{"empty syscall name", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[""],"action":"SCMP_ACT_ALLOW"}]}`, "syscalls[0]: empty syscall name"},
	{"no names", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}`, "syscalls[0]: no syscall names"},
	{"name and names", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}`, "syscalls[0]: both name and names"},
	{"missing action", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"]}]}`, "syscalls[0]: missing action"},
	{"bad action", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"ALLOW"}]}`, `syscalls[0]: unknown action "ALLOW"`},
	{"errno on allow", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}`, "syscalls[0]: errnoRet is set but action SCMP_ACT_ALLOW"},
	{"bad operator", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":1,"op":"SCMP_CMP_LIKE"}]}]}`, `syscalls[0]: args[1]: unknown operator "SCMP_CMP_LIKE"`},
	{"bad index", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, "syscalls[0]: args[0]: index 6 out of range"},
	{"bad cap", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["SYS_ADMIN"]}}]}`, `syscalls[0]: includes: caps[0]: unknown capability "SYS_ADMIN"`},
	{"bad filter arch", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["SCMP_ARCH_X86"]}}]}`, `syscalls[0]: excludes: arches[0]: unknown architecture "SCMP_ARCH_X86"`},
	{"bad min kernel", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5"}}]}`, `minKernel "5"`},
	{"zero min kernel", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"0.0"}}]}`, "version cannot be 0.0"},
}

func TestInvalidProfilesNameTheEntry(t *testing.T) {
	for _, tc := range invalidProfiles {
		t.Run(tc.name, func(t *testing.T) {
			_, err := seccomp.Parse([]byte(tc.json))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			var pe *seccomp.ProfileError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ProfileError", err)
			}
		})
	}
}

func TestLoadFileNamesFileAndEntry(t *testing.T) {
	path := filepath.Join("..", "testdata", "seccomp", "invalid-typo.json")
	_, err := seccomp.LoadFile(path)
	want := `seccomp profile ` + path + `: syscalls[3]: unknown syscall "openatt"; check the spelling`
	if err == nil || err.Error() != want {
		t.Errorf("LoadFile error = %v\nwant %s", err, want)
	}
	_, err = seccomp.LoadFile(filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "missing.json") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error = %v", err)
	}
}

// Syscalls newer than an old libseccomp are real names, not typos.
func TestRecentSyscallsAccepted(t *testing.T) {
	for _, n := range []string{"mseal", "listmount", "statmount", "lsm_get_self_attr", "uretprobe", "setxattrat", "fchmodat2", "cachestat"} {
		t.Run(n, func(t *testing.T) {
			if !seccomp.SyscallKnown(n) {
				t.Errorf("%s rejected", n)
			}
		})
	}
	for _, n := range []string{"openatt", "getpidd", "io_uring"} {
		if seccomp.SyscallKnown(n) {
			t.Errorf("%s accepted", n)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range append(fixtures, "invalid-typo.json") {
		f.Add(fixture(f, name))
	}
	for _, tc := range invalidProfiles {
		f.Add([]byte(tc.json))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := seccomp.Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("valid profile does not marshal: %v", err)
		}
		again, err := seccomp.Parse(out)
		if err != nil {
			t.Fatalf("own output rejected: %v\n%s", err, out)
		}
		out2, err := again.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Errorf("marshal not stable:\n%s\n%s", out, out2)
		}
	})
}

func TestCloneIsDeep(t *testing.T) {
	p := mustParse(t, "conditional.json")
	p.Extra = map[string]json.RawMessage{"x": json.RawMessage(`1`)}
	before, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c := p.Clone()
	c.Syscalls[0].Names[0] = "changed"
	c.Syscalls[1].Includes.Caps[0] = "CAP_CHANGED"
	c.ArchMap[0].SubArches[0] = "SCMP_ARCH_CHANGED"
	*c.DefaultErrnoRet = 99
	c.Extra["x"][0] = '2'
	after, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("Clone shares memory with the original:\n%s\n%s", before, after)
	}
}
