package runner

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/internal/testenv"
)

// TestOpenUserns checks both ways secrun makes the idmapped rootfs's user
// namespace, on the real kernel: the namespace is new, and an idmapped
// clone made with it shows on-disk ids 0..Size-1 as HostID.. and every
// other id as the overflow id.
func TestOpenUserns(t *testing.T) {
	testenv.RequireRoot(t)
	if openUsernsClone == nil {
		t.Fatal("built without cgo: secrun's builds use the in-process clone")
	}
	for name, open := range map[string]func(IDRange) (int, error){
		"clone":  openUsernsClone,
		"helper": openUsernsHelper,
	} {
		t.Run(name, func(t *testing.T) {
			r := IDRange{HostID: usernsBase + 7*usernsBlockSize, Size: usernsBlockSize}
			fd, err := open(r)
			if err != nil {
				t.Fatal(err)
			}
			typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
			if err != nil || typ != unix.CLONE_NEWUSER {
				t.Fatalf("NS_GET_NSTYPE = %#x, %v; want a user namespace", typ, err)
			}
			var held, self unix.Stat_t
			if err := unix.Fstat(fd, &held); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat("/proc/self/ns/user", &self); err != nil {
				t.Fatal(err)
			}
			if held.Ino == self.Ino {
				t.Fatal("the namespace is the test's own")
			}

			src, dst := t.TempDir(), t.TempDir()
			for f, id := range map[string]int{"zero": 0, "five": 5, "last": usernsBlockSize - 1, "outside": usernsBlockSize} {
				p := filepath.Join(src, f)
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Lchown(p, id, id); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan struct{})
			close(done)
			if err := idmapClone(src, dst, &usernsFD{ids: r, done: done, fd: fd}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
			for f, want := range map[string]uint32{"zero": r.HostID, "five": r.HostID + 5, "last": r.HostID + usernsBlockSize - 1, "outside": 65534} {
				fi, err := os.Lstat(filepath.Join(dst, f))
				if err != nil {
					t.Fatal(err)
				}
				st := fi.Sys().(*syscall.Stat_t)
				if st.Uid != want || st.Gid != want {
					t.Errorf("%s: seen as %d:%d through the idmapped clone, want %d:%d", f, st.Uid, st.Gid, want, want)
				}
			}
		})
	}
}
