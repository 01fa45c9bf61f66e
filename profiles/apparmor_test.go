package profiles_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/caps"
	"github.com/secrun/secrun/profiles"
)

var updateAppArmorGolden = flag.Bool("update-apparmor-golden", false, "rewrite testdata/apparmor/*.golden from the renderer")

// aaBaseSpec is the spec `runc spec` writes: its masked and read-only paths
// are what a real container has.
func aaBaseSpec(t testing.TB) *specs.Spec {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join("testdata", "apparmor", "runc-spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(buf, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func aaSetCaps(s *specs.Spec, list ...string) {
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: list, Effective: list, Permitted: list,
	}
}

// aaCases are the golden cases: each edits the base spec.
var aaCases = []struct {
	name string
	edit func(*specs.Spec)
}{
	{"runc-default", func(*specs.Spec) {}},
	{"no-caps", func(s *specs.Spec) {
		s.Process.Capabilities = nil
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}},
	{"net-raw", func(s *specs.Spec) { aaSetCaps(s, "CAP_NET_RAW", "CAP_CHOWN") }},
	{"ro-volumes", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data/in", Type: "bind", Source: "/srv/in", Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/data/out", Type: "bind", Source: "/srv/out", Options: []string{"rbind", "rw"}},
			specs.Mount{Destination: "/.secrun/init", Type: "bind", Source: "/usr/libexec/secrun-init", Options: []string{"bind", "ro", "nosuid", "nodev"}},
		)
	}},
	{"all-caps", func(s *specs.Spec) { aaSetCaps(s, caps.Known()...) }},
}

func TestRenderAppArmorGolden(t *testing.T) {
	for _, tc := range aaCases {
		t.Run(tc.name, func(t *testing.T) {
			s := aaBaseSpec(t)
			tc.edit(s)
			got, err := profiles.RenderAppArmor("secrun-"+tc.name, s)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "apparmor", tc.name+".golden")
			if *updateAppArmorGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-apparmor-golden to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendered profile differs from %s (run with -update-apparmor-golden after review):\n%s", golden, got)
			}
			// The real parser must accept every generated profile.
			if err := profiles.CheckAppArmor(got); err != nil {
				t.Fatalf("apparmor_parser rejects the generated profile: %v", err)
			}
		})
	}
}

// TestCheckAppArmorRejectsBadProfiles proves the parser check can fail: a
// check that passes everything would make the golden test worthless.
func TestCheckAppArmorRejectsBadProfiles(t *testing.T) {
	good, err := profiles.RenderAppArmor("secrun-check", aaBaseSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := profiles.CheckAppArmor(good); err != nil {
		t.Fatalf("good profile rejected: %v", err)
	}
	for _, tc := range []struct{ name, profile, wantErr string }{
		{"unknown capability", strings.Replace(good, "capability audit_write", "capability no_such_cap", 1), "no_such_cap"},
		{"missing comma", strings.Replace(good, "audit deny mount,", "audit deny mount", 1), "syntax error"},
		{"unclosed profile", strings.TrimSuffix(strings.TrimSpace(good), "}"), "apparmor_parser"},
		{"bad network family", strings.Replace(good, "network unix,", "network nosuchfamily,", 1), "Invalid network entry"},
		{"bad signal permission", strings.Replace(good, "signal (send,receive)", "signal (sendx)", 1), "apparmor_parser"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.profile == good {
				t.Fatal("the test's edit did not change the profile")
			}
			err := profiles.CheckAppArmor(tc.profile)
			if err == nil {
				t.Fatal("apparmor_parser accepted a broken profile")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

// TestRenderAppArmorPromises pins what every generated profile promises,
// independent of the golden files' exact text.
func TestRenderAppArmorPromises(t *testing.T) {
	for _, tc := range aaCases {
		t.Run(tc.name, func(t *testing.T) {
			s := aaBaseSpec(t)
			tc.edit(s)
			name := "secrun-" + tc.name
			p, err := profiles.RenderAppArmor(name, s)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(p, "\n")
			has := func(l string) bool { return slices.Contains(lines, "  "+l) }
			for _, must := range []string{
				"audit deny mount,", "audit deny umount,", "audit deny pivot_root,",
				"audit deny network alg,",
				"deny /proc/* w,", "deny /proc/[^0-9/]*/** w,", "deny /sys/** wklx,",
				"signal (send,receive) peer=" + name + ",",
				"ptrace (trace,read,tracedby,readby) peer=" + name + ",",
			} {
				if !has(must) {
					t.Errorf("profile lacks %q", must)
				}
			}
			netRaw := s.Process.Capabilities != nil && slices.Contains(s.Process.Capabilities.Bounding, "CAP_NET_RAW")
			if has("network inet raw,") != netRaw || has("network packet,") != netRaw {
				t.Errorf("raw/packet sockets allowed=%v, want allowed only with CAP_NET_RAW (%v)", has("network inet raw,"), netRaw)
			}
			if has("audit deny network inet raw,") == netRaw {
				t.Errorf("raw sockets denied=%v with CAP_NET_RAW=%v", !netRaw, netRaw)
			}
			for _, l := range lines {
				trimmed := strings.TrimSpace(l)
				switch {
				case trimmed == "capability,", trimmed == "network,", trimmed == "mount,", trimmed == "ptrace,", trimmed == "signal,":
					t.Errorf("profile has the unrestricted rule %q", trimmed)
				case strings.HasPrefix(trimmed, "change_profile"), strings.HasPrefix(trimmed, "unix"):
					t.Errorf("profile has %q", trimmed)
				case strings.HasPrefix(trimmed, "signal (send") && !strings.HasSuffix(trimmed, "peer="+name+","):
					t.Errorf("signals may be sent outside the profile: %q", trimmed)
				case strings.HasPrefix(trimmed, "ptrace") && !strings.HasSuffix(trimmed, "peer="+name+","):
					t.Errorf("ptrace reaches outside the profile: %q", trimmed)
				}
			}
			// Every masked path is denied outright, every read-only path and
			// mount denied writes.
			for _, m := range s.Linux.MaskedPaths {
				if !has("deny " + m + " rwklx,") {
					t.Errorf("masked path %s not denied", m)
				}
			}
			for _, m := range s.Mounts {
				if slices.Contains(m.Options, "ro") && !has("deny "+m.Destination+"/** wkl,") {
					t.Errorf("read-only mount %s not denied writes", m.Destination)
				}
			}
		})
	}
}

func TestRenderAppArmorRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name     string
		profile  string
		edit     func(*specs.Spec)
		wantText string
	}{
		{"name with space", "secrun x", nil, `"secrun x"`},
		{"name with newline", "a\n  capability,", nil, `capability,`},
		{"name with brace", "a{b}", nil, `"a{b}"`},
		{"name with glob", "secrun-*", nil, `"secrun-*"`},
		{"name with namespace", ":ns:name", nil, `":ns:name"`},
		{"empty name", "", nil, `""`},
		{"reserved name", "unconfined", nil, `"unconfined"`},
		{"too long", strings.Repeat("a", 129), nil, "1-128"},
		{"masked path with space", "ok", func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"/proc/a b"} }, `"/proc/a b"`},
		{"masked path glob", "ok", func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"/proc/**"} }, `"/proc/**"`},
		{"readonly path relative", "ok", func(s *specs.Spec) { s.Linux.ReadonlyPaths = []string{"proc/sys"} }, `"proc/sys"`},
		{"readonly path dotdot", "ok", func(s *specs.Spec) { s.Linux.ReadonlyPaths = []string{"/proc/../etc"} }, `"/proc/../etc"`},
		{"mount with comma", "ok", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data,/x", Options: []string{"ro"}})
		}, `"/data,/x"`},
		{"mount with variable", "ok", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/@{HOME}", Options: []string{"ro"}})
		}, `"/@{HOME}"`},
		{"mount trailing slash", "ok", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data/", Options: []string{"ro"}})
		}, `"/data/"`},
		{"unknown capability", "ok", func(s *specs.Spec) { aaSetCaps(s, "CAP_CHOWN", "CAP_EVERYTHING") }, `"CAP_EVERYTHING"`},
		{"lowercase capability", "ok", func(s *specs.Spec) { aaSetCaps(s, "chown") }, `"chown"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := aaBaseSpec(t)
			if tc.edit != nil {
				tc.edit(s)
			}
			p, err := profiles.RenderAppArmor(tc.profile, s)
			if err == nil {
				t.Fatalf("rendered a profile from a bad value:\n%s", p)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not name the value %s", err, tc.wantText)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	if _, err := profiles.RenderAppArmor("secrun-x", nil); err == nil {
		t.Error("rendered a profile from a nil spec")
	}
}

// TestAppArmorCapabilitiesCoverKnown keeps the AppArmor capability table in
// step with the capability names secrun knows.
func TestAppArmorCapabilitiesCoverKnown(t *testing.T) {
	for _, c := range caps.Known() {
		s := aaBaseSpec(t)
		aaSetCaps(s, c)
		p, err := profiles.RenderAppArmor("secrun-cap", s)
		if err != nil {
			t.Errorf("capability %s: %v", c, err)
			continue
		}
		want := "  capability " + strings.ToLower(strings.TrimPrefix(c, "CAP_")) + ","
		if !strings.Contains(p, want+"\n") {
			t.Errorf("capability %s not rendered as %q", c, want)
		}
	}
}

func TestLoadAppArmor(t *testing.T) {
	p, err := profiles.RenderAppArmor("secrun-loadtest", aaBaseSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if !profiles.AppArmorEnabled() {
		err := profiles.LoadAppArmor(p)
		if !errors.Is(err, profiles.ErrAppArmorNotEnabled) {
			t.Fatalf("LoadAppArmor without AppArmor: got %v, want ErrAppArmorNotEnabled", err)
		}
		if !strings.Contains(err.Error(), "AppArmor is not enabled on this host") {
			t.Errorf("error %q does not say AppArmor is not enabled", err)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("loading an AppArmor profile needs root")
	}
	if err := profiles.LoadAppArmor(p); err != nil {
		t.Fatal(err)
	}
	host := profiles.DetectLSM()
	if !slices.Contains(host.AppArmorProfiles, "secrun-loadtest") {
		t.Errorf("loaded profile not listed: %v", host.AppArmorProfiles)
	}
	if err := profiles.UnloadAppArmor("secrun-loadtest"); err != nil {
		t.Fatal(err)
	}
}

// aaRenderedValueRE is what a value may look like once it is inside a profile.
var aaRenderedValueRE = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)

// FuzzRenderAppArmor feeds arbitrary names and paths to the renderer: either
// it refuses them, or they are plain names and paths that cannot add, widen
// or end a rule, and the profile has exactly the shape of a known-good one.
func FuzzRenderAppArmor(f *testing.F) {
	for _, seed := range [][2]string{
		{"secrun-web", "/data"},
		{"a b", "/x"},
		{"ok", "/x y"},
		{"ok", "/x,\n  capability,"},
		{"ok\n}", "/x"},
		{"ok", "/**"},
		{"ok", "/a/../b"},
		{"ok", "/@{PROC}"},
		{"ok", "/a\x00b"},
		{"x{a,b}", "/data"},
		{"ok", "//data"},
	} {
		f.Add(seed[0], seed[1])
	}
	base := aaBaseSpec(f)
	base.Linux.MaskedPaths = []string{"/placeholder"}
	ref, err := profiles.RenderAppArmor("secrun-ref", base)
	if err != nil {
		f.Fatal(err)
	}
	refLines := strings.Count(ref, "\n")
	f.Fuzz(func(t *testing.T, name, p string) {
		s := aaBaseSpec(t)
		s.Linux.MaskedPaths = []string{p}
		out, err := profiles.RenderAppArmor(name, s)
		if err != nil {
			return
		}
		if !aaRenderedValueRE.MatchString(name) || !aaRenderedValueRE.MatchString(p) {
			t.Fatalf("accepted name %q / path %q with characters outside the allowlist", name, p)
		}
		if got := strings.Count(out, "\n"); got != refLines {
			t.Fatalf("profile for name %q path %q has %d lines, want %d", name, p, got, refLines)
		}
	})
}
