package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// How unpacking stays inside dest: every entry's parent directory is
// resolved with filepath-securejoin's pathrs (symlinks are followed as if
// dest were the root, so even an absolute symlink cannot lead outside), and
// the entry itself is then created relative to that directory handle with
// *at system calls that never follow a symlink in the final component
// (O_NOFOLLOW|O_EXCL, AT_SYMLINK_NOFOLLOW, linkat without AT_SYMLINK_FOLLOW).
// Existing entries are unlinked before being replaced, so a write never goes
// through a hardlink or symlink left by an earlier layer.

// Unpack applies one layer (an uncompressed, gzip or zstd tar stream) onto
// dest with OCI whiteout semantics. See UnpackOptions for what is stripped;
// the report lists it. A refused entry fails the whole call with an
// *UnpackError naming it; dest may then hold part of the layer, and the
// caller discards it. Ownership from the layer is applied only when running
// as root, and not with IgnoreOwner.
func Unpack(ctx context.Context, layer io.Reader, dest string, opts UnpackOptions) (UnpackReport, error) {
	u, err := newUnpacker(dest, opts)
	if err != nil {
		return UnpackReport{}, err
	}
	defer u.close()
	err = u.applyLayer(ctx, layer, nil)
	return u.report, err
}

type dirMeta struct {
	name  string
	mode  uint32
	times [2]unix.Timespec
}

type unpacker struct {
	root    *os.File
	opts    UnpackOptions
	lim     Limits
	chown   bool
	entries int   // across all layers of one unpack
	read    int64 // decompressed bytes, across layers
	written int64 // file bytes written, across layers
	report  UnpackReport
	buf     []byte

	// dirs caches in-root handles of parent directories by cleaned name.
	// stale marks it for reset before the next entry: set whenever a
	// directory or symlink is removed, since a cached name may resolve
	// through it.
	dirs  map[string]*os.File
	stale bool

	// Per layer.
	layerPaths    map[string]struct{} // names created by this layer (and their parents)
	layerSymlinks map[string]struct{} // symlinks created by this layer
	dropped       map[string]struct{} // device entries not created
	delayed       []dirMeta           // directory modes and times, applied at the end
	rootMeta      *dirMeta
	rootSet       bool // some layer had an entry for the root itself
}

func newUnpacker(dest string, opts UnpackOptions) (*unpacker, error) {
	f, err := os.OpenFile(dest, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unpack destination: %w", err)
	}
	return &unpacker{
		root:  f,
		opts:  opts,
		lim:   opts.Limits.withDefaults(),
		chown: os.Geteuid() == 0 && !opts.IgnoreOwner,
		buf:   make([]byte, 1<<20),
		dirs:  map[string]*os.File{},
	}, nil
}

func (u *unpacker) close() {
	u.resetDirs()
	u.root.Close()
}

func (u *unpacker) resetDirs() {
	for _, f := range u.dirs {
		f.Close()
	}
	clear(u.dirs)
	u.stale = false
}

var errReadLimit = errors.New("decompressed size limit reached")

type countingReader struct {
	r io.Reader
	u *unpacker
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.u.read += int64(n)
	c.u.report.Bytes += int64(n)
	if c.u.read > c.u.lim.MaxBytes {
		return n, errReadLimit
	}
	return n, err
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// decompress detects the compression from the stream's first bytes rather
// than trusting a media type.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("reading layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("layer is not valid gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(magic, zstdMagic):
		// A bounded window keeps a hostile frame from demanding gigabytes.
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(1<<27), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("layer is not valid zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// applyLayer unpacks one layer. With diffID set, the uncompressed stream is
// hashed (including what follows the tar end marker) and must match.
func (u *unpacker) applyLayer(ctx context.Context, r io.Reader, diffID *v1.Hash) error {
	br := bufio.NewReaderSize(r, 1<<16)
	dec, closeDec, err := decompress(br)
	if err != nil {
		var de *DigestError
		if errors.As(err, &de) {
			return de
		}
		return err
	}
	defer closeDec()
	var in io.Reader = &countingReader{r: dec, u: u}
	var h hash.Hash
	if diffID != nil {
		h = sha256.New()
		in = io.TeeReader(in, h)
	}
	tr := tar.NewReader(in)
	u.layerPaths = map[string]struct{}{}
	u.layerSymlinks = map[string]struct{}{}
	u.dropped = map[string]struct{}{}
	u.delayed = u.delayed[:0]
	u.rootMeta = nil
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.readError(last, err)
		}
		last = hdr.Name
		u.entries++
		u.report.Entries++
		if u.entries > u.lim.MaxEntries {
			return &UnpackError{Entry: hdr.Name, Err: fmt.Errorf("%w: the image has more than %d entries", ErrLimitExceeded, u.lim.MaxEntries)}
		}
		if u.stale || len(u.dirs) > 512 {
			u.resetDirs()
		}
		if err := u.entry(hdr, tr); err != nil {
			var de *DigestError
			switch {
			case errors.Is(err, errReadLimit):
				return u.readError(hdr.Name, err)
			case errors.As(err, &de):
				return de
			}
			return &UnpackError{Entry: hdr.Name, Err: err}
		}
	}
	if err := u.finishLayer(); err != nil {
		return err
	}
	if diffID != nil {
		if _, err := io.CopyBuffer(writerOnly{io.Discard}, in, u.buf); err != nil {
			return u.readError(last, err)
		}
		got := "sha256:" + hex.EncodeToString(h.Sum(nil))
		if got != diffID.String() {
			return &DigestError{What: "uncompressed layer " + diffID.String(), Got: got}
		}
	}
	return nil
}

// readError turns an error from the layer stream into a one-line error.
func (u *unpacker) readError(last string, err error) error {
	var de *DigestError
	switch {
	case errors.Is(err, errReadLimit):
		return &UnpackError{Entry: last, Err: fmt.Errorf("%w: more than %d bytes of decompressed data", ErrLimitExceeded, u.lim.MaxBytes)}
	case errors.As(err, &de):
		return de
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case last == "":
		return fmt.Errorf("layer is not a valid tar stream: %w", err)
	default:
		return fmt.Errorf("layer is not a valid tar stream after entry %q: %w", last, err)
	}
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > 1<<32-2 || int64(hdr.Gid) > 1<<32-2 {
		return fmt.Errorf("invalid owner %d:%d", hdr.Uid, hdr.Gid)
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("only a directory can name the image root")
		}
		return u.rootDir(hdr)
	}
	if err := u.checkThroughSymlink(name); err != nil {
		return err
	}
	dir, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(dir, base)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.regular(name, dir, base, hdr, r)
	case tar.TypeDir:
		return u.directory(name, dir, base, hdr)
	case tar.TypeSymlink:
		return u.symlink(name, dir, base, hdr)
	case tar.TypeLink:
		return u.hardlink(name, dir, base, hdr)
	case tar.TypeFifo:
		return u.fifo(name, dir, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		// Device nodes in an image would hand the container raw hardware
		// access; the runtime creates the few devices a container gets.
		u.report.DroppedDevices = append(u.report.DroppedDevices, name)
		u.dropped[name] = struct{}{}
		return nil
	default:
		return fmt.Errorf("unsupported entry type %q", string(hdr.Typeflag))
	}
}

// checkThroughSymlink refuses a name whose parent path goes through a
// symlink created by the same layer. A layer diffed from a filesystem never
// has that shape; it is how a tar plants a link and then writes through it.
// (Writes through symlinks from lower layers are followed, confined to dest.)
func (u *unpacker) checkThroughSymlink(name string) error {
	if len(u.layerSymlinks) == 0 {
		return nil
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			if _, ok := u.layerSymlinks[name[:i]]; ok {
				return fmt.Errorf("it goes through the symlink %q created earlier in the same layer", name[:i])
			}
		}
	}
	return nil
}

// parentDir returns a descriptor for the directory named dir ("" = dest),
// resolved inside dest. With create, missing directories are made (0755).
func (u *unpacker) parentDir(dir string, create bool) (int, error) {
	if dir == "" {
		return int(u.root.Fd()), nil
	}
	if f, ok := u.dirs[dir]; ok {
		return int(f.Fd()), nil
	}
	var f *os.File
	var err error
	if create {
		f, err = pathrs.MkdirAllHandle(u.root, dir, 0o755)
	} else {
		f, err = pathrs.OpenatInRoot(u.root, dir)
	}
	if err != nil {
		return -1, fmt.Errorf("parent directory %q: %w", dir, err)
	}
	u.dirs[dir] = f
	return int(f.Fd()), nil
}

// created records name (and its parents) as made by the current layer, so
// an opaque whiteout later in the layer keeps it.
func (u *unpacker) created(name string) {
	for {
		if _, ok := u.layerPaths[name]; ok {
			return
		}
		u.layerPaths[name] = struct{}{}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return
		}
		name = name[:i]
	}
}

// removeExisting removes whatever is at pfd/base (a directory with all it
// holds), unless keepDir and it is a directory. kept reports that case.
func (u *unpacker) removeExisting(pfd int, base, name string, keepDir bool) (kept bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return false, nil
		}
		return false, fmt.Errorf("replacing %q: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if keepDir {
			return true, nil
		}
		if err := removeAllAt(pfd, base); err != nil {
			return false, fmt.Errorf("replacing directory %q: %w", name, err)
		}
		u.stale = true
		for l := range u.layerSymlinks {
			if strings.HasPrefix(l, name+"/") {
				delete(u.layerSymlinks, l)
			}
		}
	default:
		if err := unix.Unlinkat(pfd, base, 0); err != nil && err != unix.ENOENT {
			return false, fmt.Errorf("replacing %q: %w", name, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			u.stale = true
		}
	}
	delete(u.layerSymlinks, name)
	return false, nil
}

// removeAllAt removes dirfd/name and, for a directory, everything below it,
// without following symlinks.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %q: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return fmt.Errorf("removing %q: %w", name, err)
	}
	return nil
}

// create runs mk; if the name exists, it is removed first and mk retried.
func (u *unpacker) create(pfd int, base, name string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if _, err := u.removeExisting(pfd, base, name, false); err != nil {
			return err
		}
		err = mk()
	}
	return err
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func entryTimes(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(at), timespec(hdr.ModTime)}
}

func (u *unpacker) setTimes(pfd int, base, name string, hdr *tar.Header) error {
	ts := entryTimes(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times of %q: %w", name, err)
	}
	return nil
}

func (u *unpacker) regular(name, dir, base string, hdr *tar.Header, r io.Reader) error {
	if hdr.Size < 0 {
		return errors.New("negative size")
	}
	if hdr.Size > u.lim.MaxBytes-u.written {
		return fmt.Errorf("%w: its %d bytes would take the image past %d bytes", ErrLimitExceeded, hdr.Size, u.lim.MaxBytes)
	}
	u.written += hdr.Size
	pfd, err := u.parentDir(dir, true)
	if err != nil {
		return err
	}
	var fd int
	err = u.create(pfd, base, name, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = io.CopyBuffer(writerOnly{f}, r, u.buf)
	if err == nil {
		err = u.fileMeta(fd, name, hdr)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing file: %w", cerr)
	}
	if err != nil {
		return err
	}
	u.created(name)
	return u.setTimes(pfd, base, name, hdr)
}

// perm is the mode a tree gets for an entry. Without the layer's owners
// every entry belongs to the unpacking user and its group, and a rootless
// container's processes carry that user's groups (runc cannot drop them
// without root): the group bits would then grant what the image gave its own
// groups. So they are narrowed to the "other" bits, which is what a
// container user outside the file's group would have had.
func (u *unpacker) perm(mode uint32) uint32 {
	if u.chown {
		return mode
	}
	return mode&^0o070 | (mode&0o007)<<3
}

// fileMeta applies owner, mode (setuid/setgid stripped unless kept) and
// xattrs to a new regular file, in the order that keeps each: chown clears
// setuid bits and capabilities, so they come after it.
func (u *unpacker) fileMeta(fd int, name string, hdr *tar.Header) error {
	if u.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("setting owner %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	mode := u.perm(uint32(hdr.Mode) & 0o7777)
	if mode&(unix.S_ISUID|unix.S_ISGID) != 0 && !u.opts.KeepSetuid {
		mode &^= unix.S_ISUID | unix.S_ISGID
		u.report.StrippedSetuid = append(u.report.StrippedSetuid, name)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("setting mode %o: %w", mode, err)
	}
	return u.xattrs(fd, name, hdr, true)
}

// xattrs applies the extended attributes an image may carry: user.* (but
// not overlayfs's user.overlay.*), POSIX ACLs, and security.capability only
// with KeepSetuid. Others (trusted.*, security.selinux, overlay metadata)
// could steer the host's overlayfs or LSM and are dropped and reported.
func (u *unpacker) xattrs(fd int, name string, hdr *tar.Header, settable bool) error {
	if len(hdr.PAXRecords) == 0 {
		return nil
	}
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		x, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			u.report.DroppedXattrs = append(u.report.DroppedXattrs, name+": "+k)
			continue
		}
		switch {
		case x == "security.capability":
			if !u.opts.KeepSetuid {
				u.report.StrippedCaps = append(u.report.StrippedCaps, name)
				continue
			}
		case strings.HasPrefix(x, "user.") && !strings.HasPrefix(x, "user.overlay."):
		case x == "system.posix_acl_access" || x == "system.posix_acl_default":
		default:
			u.report.DroppedXattrs = append(u.report.DroppedXattrs, name+": "+x)
			continue
		}
		if !settable {
			u.report.DroppedXattrs = append(u.report.DroppedXattrs, name+": "+x)
			continue
		}
		if err := unix.Fsetxattr(fd, x, []byte(hdr.PAXRecords[k]), 0); err != nil {
			if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
				u.report.DroppedXattrs = append(u.report.DroppedXattrs, name+": "+x)
				continue
			}
			return fmt.Errorf("setting xattr %s: %w", x, err)
		}
	}
	return nil
}

func (u *unpacker) directory(name, dir, base string, hdr *tar.Header) error {
	pfd, err := u.parentDir(dir, true)
	if err != nil {
		return err
	}
	// Created private; the mode is applied when the layer is done, so a
	// read-only directory can still be filled.
	err = unix.Mkdirat(pfd, base, 0o700)
	if err == unix.EEXIST {
		var kept bool
		if kept, err = u.removeExisting(pfd, base, name, true); err == nil && !kept {
			err = unix.Mkdirat(pfd, base, 0o700)
		}
	}
	if err != nil {
		return fmt.Errorf("creating directory: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}
	err = u.dirMeta(fd, name, hdr)
	unix.Close(fd)
	if err != nil {
		return err
	}
	u.created(name)
	return nil
}

// dirMeta sets owner and xattrs now and queues mode and times. Directory
// setgid and sticky bits are kept: they grant no privilege.
func (u *unpacker) dirMeta(fd int, name string, hdr *tar.Header) error {
	if u.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("setting owner %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if err := u.xattrs(fd, name, hdr, true); err != nil {
		return err
	}
	m := dirMeta{name: name, mode: u.perm(uint32(hdr.Mode) & 0o7777), times: entryTimes(hdr)}
	if name == "" {
		u.rootMeta = &m
		u.rootSet = true
	} else {
		u.delayed = append(u.delayed, m)
	}
	return nil
}

func (u *unpacker) rootDir(hdr *tar.Header) error {
	return u.dirMeta(int(u.root.Fd()), "", hdr)
}

func (u *unpacker) symlink(name, dir, base string, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return errors.New("symlink with an empty target")
	}
	if strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return errors.New("symlink target contains a NUL byte")
	}
	pfd, err := u.parentDir(dir, true)
	if err != nil {
		return err
	}
	err = u.create(pfd, base, name, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) })
	if err != nil {
		return fmt.Errorf("creating symlink: %w", err)
	}
	u.layerSymlinks[name] = struct{}{}
	u.created(name)
	if u.chown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting owner %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if err := u.xattrs(-1, name, hdr, false); err != nil {
		return err
	}
	return u.setTimes(pfd, base, name, hdr)
}

func (u *unpacker) hardlink(name, dir, base string, hdr *tar.Header) error {
	target, err := cleanLinkTarget(hdr.Linkname)
	if err != nil {
		return err
	}
	if _, ok := u.dropped[target]; ok {
		u.report.DroppedDevices = append(u.report.DroppedDevices, name)
		u.dropped[name] = struct{}{}
		return nil
	}
	if err := u.checkThroughSymlink(target); err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	pfd, err := u.parentDir(dir, true)
	if err != nil {
		return err
	}
	tdir, tbase := splitName(target)
	tfd, err := u.parentDir(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %q does not exist in the image", hdr.Linkname)
	}
	err = u.create(pfd, base, name, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
	if err == unix.ENOENT {
		return fmt.Errorf("hardlink target %q does not exist in the image", hdr.Linkname)
	}
	if err != nil {
		return fmt.Errorf("creating hardlink to %q: %w", hdr.Linkname, err)
	}
	u.created(name)
	return nil
}

func (u *unpacker) fifo(name, dir, base string, hdr *tar.Header) error {
	pfd, err := u.parentDir(dir, true)
	if err != nil {
		return err
	}
	err = u.create(pfd, base, name, func() error { return unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0) })
	if err != nil {
		return fmt.Errorf("creating fifo: %w", err)
	}
	u.created(name)
	if u.chown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting owner %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	// The fifo was just created here by us; fchmodat cannot be redirected.
	if err := unix.Fchmodat(pfd, base, u.perm(uint32(hdr.Mode)&0o1777), 0); err != nil {
		return fmt.Errorf("setting mode: %w", err)
	}
	return u.setTimes(pfd, base, name, hdr)
}

func (u *unpacker) whiteout(dir, base string) error {
	if base == whiteoutOpaque {
		return u.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return fmt.Errorf("unsupported whiteout metadata name %q", base)
	}
	target := base[len(whiteoutPrefix):]
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("invalid whiteout: it would delete %q", target)
	}
	pfd, err := u.parentDir(dir, false)
	if err != nil {
		// Nothing below a missing directory to delete.
		return nil
	}
	name := target
	if dir != "" {
		name = dir + "/" + target
	}
	_, err = u.removeExisting(pfd, target, name, false)
	return err
}

// opaque empties dir of everything lower layers put there.
func (u *unpacker) opaque(dir string) error {
	pfd, err := u.parentDir(dir, true)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opaque whiteout: opening %q: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("opaque whiteout: reading %q: %w", dir, err)
	}
	for _, n := range names {
		name := n
		if dir != "" {
			name = dir + "/" + n
		}
		if _, ok := u.layerPaths[name]; ok {
			continue
		}
		if _, err := u.removeExisting(pfd, n, name, false); err != nil {
			return err
		}
	}
	if dir != "" {
		u.created(dir)
	}
	return nil
}

// finishLayer applies queued directory modes and times, deepest first.
func (u *unpacker) finishLayer() error {
	for i := len(u.delayed) - 1; i >= 0; i-- {
		m := u.delayed[i]
		dir, base := splitName(m.name)
		pfd, err := u.parentDir(dir, false)
		if err != nil {
			return &UnpackError{Entry: m.name, Err: err}
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT || err == unix.ELOOP || err == unix.ENOTDIR {
			continue // replaced later in the layer
		}
		if err != nil {
			return &UnpackError{Entry: m.name, Err: err}
		}
		err = unix.Fchmod(fd, m.mode)
		unix.Close(fd)
		if err == nil {
			err = unix.UtimesNanoAt(pfd, base, m.times[:], unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return &UnpackError{Entry: m.name, Err: fmt.Errorf("setting mode and times: %w", err)}
		}
	}
	if m := u.rootMeta; m != nil {
		rfd := int(u.root.Fd())
		if err := unix.Fchmod(rfd, m.mode); err != nil {
			return fmt.Errorf("setting mode of the image root: %w", err)
		}
		if err := unix.UtimesNanoAt(rfd, ".", m.times[:], 0); err != nil {
			return fmt.Errorf("setting times of the image root: %w", err)
		}
	}
	return nil
}

// unpackLayers applies layers in order onto dest (used by Rootfs). open
// returns the compressed stream of layer i, verified against its digest.
func unpackLayers(ctx context.Context, dest string, opts UnpackOptions, n int, open func(i int) (io.ReadCloser, v1.Hash, error)) (UnpackReport, error) {
	u, err := newUnpacker(dest, opts)
	if err != nil {
		return UnpackReport{}, err
	}
	defer u.close()
	for i := 0; i < n; i++ {
		rc, diffID, err := open(i)
		if err != nil {
			return u.report, err
		}
		err = u.applyLayer(ctx, rc, &diffID)
		// Read to the end so the compressed digest is checked too. After a
		// failure, a digest mismatch is the root cause worth reporting: a
		// corrupted blob usually surfaces first as a broken tar or gzip.
		_, derr := io.CopyBuffer(writerOnly{io.Discard}, rc, u.buf)
		var de *DigestError
		if err == nil || (errors.As(derr, &de) && ctx.Err() == nil) {
			err = derr
		}
		cerr := rc.Close()
		if err != nil {
			return u.report, fmt.Errorf("layer %d (%s): %w", i+1, diffID, err)
		}
		if cerr != nil {
			return u.report, fmt.Errorf("layer %d (%s): %w", i+1, diffID, cerr)
		}
	}
	if !u.rootSet {
		if err := unix.Fchmod(int(u.root.Fd()), 0o755); err != nil {
			return u.report, fmt.Errorf("setting mode of the image root: %w", err)
		}
	}
	return u.report, nil
}
