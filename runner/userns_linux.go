package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// IDRange is a contiguous range of host ids that container ids 0..Size-1 map to.
type IDRange struct {
	HostID uint32 `json:"host_id"`
	Size   uint32 `json:"size"`
}

// Each container gets a block of its own so that two containers never share
// host ids: a process that escapes one container is a stranger to the others.
// The blocks sit far above any range /etc/subuid hands out by default
// (useradd starts at 100000 and allocates 65536 a user).
const (
	usernsBase      = 1 << 30
	usernsBlockSize = 65536
	usernsBlocks    = 4096
)

// usernsAllocator hands out per-container host id blocks, one marker file a
// block, created with O_EXCL so that concurrent secrun processes never get the
// same block.
type usernsAllocator struct{ dir string }

func (a usernsAllocator) allocate(owner string) (IDRange, error) {
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return IDRange{}, fmt.Errorf("user namespace allocator: %w", err)
	}
	for i := 0; i < usernsBlocks; i++ {
		f, err := os.OpenFile(filepath.Join(a.dir, strconv.Itoa(i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return IDRange{}, fmt.Errorf("user namespace allocator: %w", err)
		}
		_, werr := f.WriteString(owner)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return IDRange{}, fmt.Errorf("user namespace allocator: %w", err)
		}
		return IDRange{HostID: usernsBase + uint32(i)*usernsBlockSize, Size: usernsBlockSize}, nil
	}
	return IDRange{}, fmt.Errorf("user namespace allocator: all %d id blocks are in use; remove stopped containers with 'secrun rm'", usernsBlocks)
}

func (a usernsAllocator) release(r IDRange) error {
	if r.HostID < usernsBase {
		return nil
	}
	i := (r.HostID - usernsBase) / usernsBlockSize
	err := os.Remove(filepath.Join(a.dir, strconv.Itoa(int(i))))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// releaseOwner releases the blocks allocated to owner.
func (a usernsAllocator) releaseOwner(owner string) error {
	entries, err := os.ReadDir(a.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("user namespace allocator: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(a.dir, e.Name())
		data, err := os.ReadFile(p)
		if err == nil && string(data) == owner {
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("user namespace allocator: %w", err))
		}
	}
	return errors.Join(errs...)
}

// usernsFD is a user namespace with a container's mapping, being opened
// ahead of its use, while the plan, the policy decision and its audit write
// go on: with cgo that takes a clone (a fraction of a millisecond), without
// it two program starts (about 6 ms).
type usernsFD struct {
	ids  IDRange
	done chan struct{}
	fd   int
	err  error
}

// openUsernsAsync starts opening a user namespace for r.
func openUsernsAsync(r IDRange) *usernsFD {
	u := &usernsFD{ids: r, done: make(chan struct{}), fd: -1}
	go func() {
		defer close(u.done)
		u.fd, u.err = openUsernsFD(r)
	}()
	return u
}

// take waits for the namespace and hands its fd over; the caller closes it.
func (u *usernsFD) take() (int, error) {
	<-u.done
	fd := u.fd
	u.fd = -1
	return fd, u.err
}

// close waits for the namespace and closes it unless it was taken; nil is
// a namespace never asked for.
func (u *usernsFD) close() {
	if u == nil {
		return
	}
	<-u.done
	if u.fd >= 0 {
		unix.Close(u.fd)
		u.fd = -1
	}
}

// openUsernsFD returns a file descriptor of a user namespace with mapping r,
// as mount_setattr(MOUNT_ATTR_IDMAP) needs. Built with cgo, secrun makes it
// with an in-process clone (openUsernsClone, userns_clone_linux.go);
// otherwise a util-linux helper holds it (openUsernsHelper).
func openUsernsFD(r IDRange) (int, error) {
	if openUsernsClone != nil {
		return openUsernsClone(r)
	}
	return openUsernsHelper(r)
}

// openUsernsClone is set when secrun is built with cgo.
var openUsernsClone func(IDRange) (int, error)

// openUsernsHelper is openUsernsFD without cgo. The kernel only makes user
// namespaces for processes, so a short-lived process holds it while we open
// its ns file: `unshare --user cat` (util-linux), blocked on a pipe we
// control. The namespace is made by that small process, not by a clone of
// secrun with CLONE_NEWUSER: Go cannot vfork such a clone, and copying
// secrun's page tables stalls its other threads for milliseconds. Once cat
// echoes a byte, the namespace exists; secrun (root in the parent
// namespace) writes its maps. Two program starts make it cost about 6 ms.
func openUsernsHelper(r IDRange) (int, error) {
	unsharePath, err := exec.LookPath("unshare")
	if err != nil {
		return -1, fmt.Errorf("idmapped rootfs: %w (util-linux)", err)
	}
	catPath, err := exec.LookPath("cat")
	if err != nil {
		return -1, fmt.Errorf("idmapped rootfs: %w", err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("idmapped rootfs: %w", err)
	}
	defer inR.Close()
	defer inW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("idmapped rootfs: %w", err)
	}
	defer outR.Close()
	defer outW.Close()
	cmd := exec.Command(unsharePath, "--user", "--", catPath)
	cmd.Stdin, cmd.Stdout = inR, outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("idmapped rootfs: creating a user namespace: %w", err)
	}
	inR.Close()
	outW.Close()
	fd, err := holdUserns(cmd.Process.Pid, r, inW, outR)
	inW.Close()
	// cat exits on EOF; its exit status says nothing about the namespace.
	waitErr := cmd.Wait()
	if err != nil {
		return -1, fmt.Errorf("idmapped rootfs: %w", err)
	}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		unix.Close(fd)
		return -1, fmt.Errorf("idmapped rootfs: %w", waitErr)
	}
	return fd, nil
}

// holdUserns waits until cat runs (in its new user namespace), maps r in
// that namespace and opens it.
func holdUserns(pid int, r IDRange, in, out *os.File) (int, error) {
	if _, err := in.Write([]byte{'x'}); err != nil {
		return -1, fmt.Errorf("user namespace holder: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(out, b[:]); err != nil {
		return -1, fmt.Errorf("user namespace holder did not start: %w", err)
	}
	return mapUserns(pid, r)
}

// mapUserns maps r in the user namespace of process pid, which must not be
// secrun's own, and opens that namespace.
func mapUserns(pid int, r IDRange) (int, error) {
	proc := "/proc/" + strconv.Itoa(pid)
	var self, held unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &self); err != nil {
		return -1, err
	}
	if err := unix.Stat(proc+"/ns/user", &held); err != nil {
		return -1, err
	}
	if self.Ino == held.Ino && self.Dev == held.Dev {
		return -1, errors.New("user namespace holder runs in secrun's own user namespace")
	}
	line := fmt.Sprintf("0 %d %d\n", r.HostID, r.Size)
	for _, m := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(proc+"/"+m, []byte(line), 0); err != nil {
			return -1, fmt.Errorf("writing the user namespace's %s: %w", m, err)
		}
	}
	fd, err := unix.Open(proc+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the user namespace: %w", err)
	}
	return fd, nil
}
