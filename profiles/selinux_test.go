package profiles_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/selinux/go-selinux"

	"github.com/secrun/secrun/profiles"
)

func TestParseSELinuxOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []string
		want    profiles.SELinuxOptions
		wantErr string
	}{
		{name: "none", opts: nil},
		{name: "disable", opts: []string{"disable"}, want: profiles.SELinuxOptions{Disable: true}},
		{name: "type", opts: []string{"type:spc_t"}, want: profiles.SELinuxOptions{Type: "spc_t"}},
		{name: "all keys", opts: []string{"user:user_u", "role:user_r", "type:my.type-t", "filetype:my_file_t", "level:s0:c1,c2"},
			want: profiles.SELinuxOptions{User: "user_u", Role: "user_r", Type: "my.type-t", FileType: "my_file_t", Level: "s0:c1,c2"}},
		{name: "level range", opts: []string{"level:s0-s0:c0.c1023"}, want: profiles.SELinuxOptions{Level: "s0-s0:c0.c1023"}},
		{name: "level plain", opts: []string{"level:s0"}, want: profiles.SELinuxOptions{Level: "s0"}},
		{name: "level list and range", opts: []string{"level:s1:c0,c3.c7,c9"}, want: profiles.SELinuxOptions{Level: "s1:c0,c3.c7,c9"}},

		{name: "unknown key", opts: []string{"kind:x"}, wantErr: `bad label option "kind:x": unknown key "kind"`},
		{name: "no colon", opts: []string{"type"}, wantErr: `bad label option "type"`},
		{name: "empty value", opts: []string{"type:"}, wantErr: `bad label option "type:"`},
		{name: "label prefix", opts: []string{"label=type:x"}, wantErr: `bad label option "label=type:x"`},
		{name: "duplicate", opts: []string{"type:a_t", "type:b_t"}, wantErr: `label option "type" is given twice`},
		{name: "disable and type", opts: []string{"disable", "type:spc_t"}, wantErr: "label=disable cannot be combined"},
		{name: "type with colon", opts: []string{"type:a:b"}, wantErr: `"a:b" is not an SELinux type name`},
		{name: "type with space", opts: []string{"type:a b"}, wantErr: `"a b" is not an SELinux type name`},
		{name: "user starts with digit", opts: []string{"user:1u"}, wantErr: "is not an SELinux user name"},
		{name: "category too high", opts: []string{"level:s0:c1024"}, wantErr: `"c1024" is out of range c0..c1023`},
		{name: "sensitivity too high", opts: []string{"level:s16"}, wantErr: "out of range s0..s15"},
		{name: "leading zero", opts: []string{"level:s0:c01"}, wantErr: `"c01" is not c<number>`},
		{name: "no sensitivity", opts: []string{"level:c1,c2"}, wantErr: "is not an MLS level"},
		{name: "empty category", opts: []string{"level:s0:c1,"}, wantErr: "is not an MLS level"},
		{name: "negative", opts: []string{"level:s0:c-1"}, wantErr: "is not an MLS level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := profiles.ParseSELinuxOptions(tc.opts)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted %q as %+v", tc.opts, got)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

var mcsLevelRE = regexp.MustCompile(`^s0:c([0-9]+),c([0-9]+)$`)

func TestAllocateSELinuxLabels(t *testing.T) {
	if selinux.GetEnabled() {
		t.Skip("the expected contexts are container-selinux's defaults, used where SELinux is off; on an SELinux host the policy's lxc_contexts apply")
	}
	for _, tc := range []struct {
		name                string
		opts                []string
		wantProc, wantMount string // with LEVEL for the allocated level
	}{
		{"default", nil, "system_u:system_r:container_t:LEVEL", "system_u:object_r:container_file_t:LEVEL"},
		{"type", []string{"type:spc_t"}, "system_u:system_r:spc_t:LEVEL", "system_u:object_r:container_file_t:LEVEL"},
		{"filetype", []string{"filetype:my_file_t"}, "system_u:system_r:container_t:LEVEL", "system_u:object_r:my_file_t:LEVEL"},
		{"user and role", []string{"user:user_u", "role:user_r"}, "user_u:user_r:container_t:LEVEL", "user_u:object_r:container_file_t:LEVEL"},
		{"level", []string{"level:s0:c5,c6"}, "system_u:system_r:container_t:s0:c5,c6", "system_u:object_r:container_file_t:s0:c5,c6"},
		{"disable", []string{"disable"}, "", "system_u:object_r:container_file_t:s0:c1022,c1023"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels, release, err := profiles.AllocateSELinux(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			level := ""
			if i := strings.LastIndex(labels.Mount, ":s0"); i >= 0 {
				level = labels.Mount[i+1:]
			}
			if strings.Contains(tc.wantProc+tc.wantMount, "LEVEL") {
				m := mcsLevelRE.FindStringSubmatch(level)
				if m == nil {
					t.Fatalf("mount label %q has no s0:cX,cY level", labels.Mount)
				}
				var c1, c2 int
				if _, err := fmt.Sscan(m[1]+" "+m[2], &c1, &c2); err != nil {
					t.Fatal(err)
				}
				if c1 >= c2 || c2 >= 1022 {
					t.Errorf("level %s: want c1 < c2 < 1022 (the top pair is label=disable's)", level)
				}
			}
			wantProc := strings.ReplaceAll(tc.wantProc, "LEVEL", level)
			wantMount := strings.ReplaceAll(tc.wantMount, "LEVEL", level)
			if labels.Process != wantProc || labels.Mount != wantMount {
				t.Errorf("got %+v, want {Process:%s Mount:%s}", labels, wantProc, wantMount)
			}
		})
	}
	if _, _, err := profiles.AllocateSELinux([]string{"type:"}); err == nil {
		t.Error("AllocateSELinux accepted a bad option")
	}
}

// TestAllocateSELinuxConcurrent: many goroutines allocating at once all get
// distinct pairs.
func TestAllocateSELinuxConcurrent(t *testing.T) {
	const n = 300
	var (
		mu       sync.Mutex
		seen     = map[string]bool{}
		releases []func()
		wg       sync.WaitGroup
	)
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			labels, release, err := profiles.AllocateSELinux(nil)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[labels.Process] {
				errs <- fmt.Errorf("label %s handed out twice", labels.Process)
			}
			seen[labels.Process] = true
			releases = append(releases, release)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, r := range releases {
		r()
		r() // a second release is harmless
	}
}

// TestMCSAllocatorExhaustAndReuse uses a tiny category space: every pair is
// handed out once, the next allocation fails clearly, and a released pair is
// handed out again.
func TestMCSAllocatorExhaustAndReuse(t *testing.T) {
	a := &profiles.MCSAllocator{Categories: 6} // c0..c3 drawable: 6 pairs
	seen := map[string]func() error{}
	for range 6 {
		l, rel, err := a.Allocate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[l.Process] != nil {
			t.Fatalf("%s handed out twice", l.Process)
		}
		if strings.Contains(l.Process, "c4") || strings.Contains(l.Process, "c5") {
			t.Fatalf("%s uses the reserved top pair's categories", l.Process)
		}
		seen[l.Process] = rel
	}
	if a.InUse() != 6 {
		t.Fatalf("InUse = %d, want 6", a.InUse())
	}
	_, _, err := a.Allocate(nil)
	if err == nil || !strings.Contains(err.Error(), "no free MCS category pair") {
		t.Fatalf("allocation beyond the space: got %v, want a 'no free MCS category pair' error", err)
	}
	var freed string
	for l, rel := range seen {
		freed = l
		if err := rel(); err != nil {
			t.Fatal(err)
		}
		break
	}
	l, rel, err := a.Allocate(nil)
	if err != nil {
		t.Fatalf("allocation after a release: %v", err)
	}
	if l.Process != freed {
		t.Fatalf("got %s, want the released %s", l.Process, freed)
	}
	if err := rel(); err != nil {
		t.Fatal(err)
	}
	for _, r := range seen {
		if err := r(); err != nil {
			t.Fatal(err)
		}
	}
	if a.InUse() != 0 {
		t.Fatalf("InUse = %d after releasing everything", a.InUse())
	}
}

// TestMCSAllocatorConcurrentReuse: concurrent allocation over a space just
// big enough is all-distinct, and after a full release the whole space can be
// allocated again.
func TestMCSAllocatorConcurrentReuse(t *testing.T) {
	a := &profiles.MCSAllocator{Categories: 14} // 12 drawable: 66 pairs
	const pairs = 66
	for round := range 3 {
		var (
			mu   sync.Mutex
			seen = map[string]bool{}
			rels []func() error
			wg   sync.WaitGroup
		)
		errs := make(chan error, pairs)
		for range pairs {
			wg.Go(func() {
				l, rel, err := a.Allocate(nil)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[l.Process] {
					errs <- fmt.Errorf("round %d: %s handed out twice", round, l.Process)
				}
				seen[l.Process] = true
				rels = append(rels, rel)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(seen) != pairs {
			t.Fatalf("round %d: %d distinct labels, want %d", round, len(seen), pairs)
		}
		for _, r := range rels {
			if err := r(); err != nil {
				t.Fatal(err)
			}
		}
		if a.InUse() != 0 {
			t.Fatalf("round %d: InUse = %d after release", round, a.InUse())
		}
	}
}

// TestMCSAllocatorStateDir: two allocators sharing a state directory stand
// for two secrun processes; they never hand out the same pair.
func TestMCSAllocatorStateDir(t *testing.T) {
	dir := t.TempDir()
	a := &profiles.MCSAllocator{StateDir: dir, Categories: 6}
	b := &profiles.MCSAllocator{StateDir: dir, Categories: 6}
	seen := map[string]bool{}
	var rels []func() error
	for i := range 6 {
		alloc := a
		if i%2 == 1 {
			alloc = b
		}
		l, rel, err := alloc.Allocate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[l.Process] {
			t.Fatalf("%s handed out twice across allocators", l.Process)
		}
		seen[l.Process] = true
		rels = append(rels, rel)
	}
	if _, _, err := b.Allocate(nil); err == nil {
		t.Fatal("b allocated beyond the shared space")
	}
	for _, r := range rels {
		if err := r(); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("state directory not empty after release: %v", entries)
	}

	// A level the user names is shared: both hold it, and it stays reserved
	// until the last holder releases it.
	_, relA, err := a.Allocate([]string{"level:s0:c1,c2"})
	if err != nil {
		t.Fatal(err)
	}
	_, relB, err := b.Allocate([]string{"level:s0:c1,c2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := relA(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "s0:c1,c2")); err != nil {
		t.Fatalf("level released while b still holds it: %v", err)
	}
	if err := relB(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "s0:c1,c2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("level still reserved after the last release: %v", err)
	}
}

func TestRelabelVolume(t *testing.T) {
	dir := t.TempDir()
	const mount = "system_u:object_r:container_file_t:s0:c1,c2"
	for _, tc := range []struct {
		name, path, label, wantErr string
	}{
		{"relative path", "data", mount, "must be absolute"},
		{"missing path", filepath.Join(dir, "nope"), mount, "no such file"},
		{"root", "/", mount, "refusing to relabel the system directory /"},
		{"etc", "/etc", mount, "refusing to relabel the system directory /etc"},
		{"usr via dotdot", "/usr/../usr", mount, "refusing to relabel the system directory /usr"},
		{"no level", dir, "system_u:object_r:container_file_t", "is not a user:role:type:level context"},
		{"empty label", dir, "", "is not a user:role:type:level context"},
		{"bad type", dir, "system_u:object_r:bad type:s0", "has a bad type"},
		{"bad level", dir, "system_u:object_r:container_file_t:s0:c9999", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := profiles.RelabelVolume(tc.path, tc.label, false)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		if err := profiles.RelabelVolume(home, mount, true); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("relabel of the home directory %s: got %v, want a refusal", home, err)
		}
	}
	if selinux.GetEnabled() {
		t.Skip("the no-op path is for hosts without SELinux")
	}
	for _, shared := range []bool{false, true} {
		err := profiles.RelabelVolume(dir, mount, shared)
		if !errors.Is(err, profiles.ErrSELinuxNotEnabled) {
			t.Fatalf("shared=%v: got %v, want ErrSELinuxNotEnabled", shared, err)
		}
		want := mount
		if shared {
			want = "system_u:object_r:container_file_t:s0"
		}
		if !strings.Contains(err.Error(), " to "+want+": ") {
			t.Errorf("shared=%v: error %q does not name the label %q", shared, err, want)
		}
	}
}

// FuzzParseSELinuxOptions: anything accepted yields labels whose parts are
// policy identifiers and an MLS level, never a context with extra fields.
func FuzzParseSELinuxOptions(f *testing.F) {
	for _, seed := range []string{
		"type:container_t", "level:s0:c1,c2", "disable", "user:u_u", "role:r",
		"filetype:f_t", "type:a:b", "level:s0:c1,c2:x", "level:s0-s15:c0.c1023",
		"type:\n", "level:s0:c1024", "", ":", "level:s00",
	} {
		f.Add(seed)
	}
	partRE := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	f.Fuzz(func(t *testing.T, opt string) {
		a := &profiles.MCSAllocator{Categories: 1024}
		l, rel, err := a.Allocate([]string{opt})
		if err != nil {
			return
		}
		defer func() {
			if err := rel(); err != nil {
				t.Fatal(err)
			}
		}()
		for _, ctx := range []string{l.Process, l.Mount} {
			if ctx == "" {
				continue
			}
			c, err := selinux.NewContext(ctx)
			if err != nil {
				t.Fatalf("option %q gave an unparsable context %q", opt, ctx)
			}
			for _, k := range []string{"user", "role", "type"} {
				if !partRE.MatchString(c[k]) {
					t.Fatalf("option %q gave %s %q in %q", opt, k, c[k], ctx)
				}
			}
			if strings.ContainsAny(c["level"], " \n\t\x00") || !strings.HasPrefix(c["level"], "s") {
				t.Fatalf("option %q gave level %q", opt, c["level"])
			}
		}
	})
}
