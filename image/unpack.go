package image

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Limits bound what unpacking one image (or one Unpack call) may produce.
// A zero field takes its default.
type Limits struct {
	// MaxBytes caps the decompressed bytes read and the file bytes written.
	MaxBytes int64
	// MaxEntries caps the number of tar entries.
	MaxEntries int
}

// DefaultLimits returns 8 GiB and 1,000,000 entries: more than any sane
// image, far less than what fills a host.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 8 << 30, MaxEntries: 1_000_000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	return l
}

// UnpackOptions control Unpack and Rootfs.
type UnpackOptions struct {
	Limits Limits
	// KeepSetuid keeps setuid/setgid bits and security.capability xattrs
	// on files. Off, they are stripped and listed in the report.
	KeepSetuid bool
	// IgnoreOwner leaves every file owned by the unpacking user instead of
	// applying the layer's owners (lchown); everything else (limits, no
	// devices, setuid/setgid and file capabilities stripped, whiteouts
	// checked) is unchanged. Rootless secrun sets it: its container's root
	// is the caller's own uid, so image files appear owned by root inside.
	// An unpack not running as root never applies owners.
	IgnoreOwner bool
}

// UnpackReport says what unpacking changed relative to the layer.
type UnpackReport struct {
	Entries int
	// Bytes is the decompressed size of the tar streams read.
	Bytes int64
	// StrippedSetuid lists files whose setuid/setgid bits were removed.
	StrippedSetuid []string
	// StrippedCaps lists files whose security.capability xattr was dropped.
	StrippedCaps []string
	// DroppedDevices lists character and block device entries not created
	// (and hardlinks to them).
	DroppedDevices []string
	// DroppedXattrs lists "path: xattr" pairs not applied: namespaces an
	// image has no business setting (trusted.*, security.* other than
	// capabilities, overlay metadata) or ones the filesystem lacks.
	DroppedXattrs []string
}

func (r *UnpackReport) merge(o UnpackReport) {
	r.Entries += o.Entries
	r.Bytes += o.Bytes
	r.StrippedSetuid = append(r.StrippedSetuid, o.StrippedSetuid...)
	r.StrippedCaps = append(r.StrippedCaps, o.StrippedCaps...)
	r.DroppedDevices = append(r.DroppedDevices, o.DroppedDevices...)
	r.DroppedXattrs = append(r.DroppedXattrs, o.DroppedXattrs...)
}

// Whiteout names (OCI image spec, "Whiteouts").
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// maxNameLen is PATH_MAX: nothing in a container could use a longer path.
const maxNameLen = 4096

var (
	errAbsoluteName = errors.New("absolute name: layer entries must be relative to the image root")
	errEscapingName = errors.New(`name contains "..": it would escape the image root`)
)

// cleanName validates a tar entry name and returns it cleaned and relative
// ("" for the root itself). Absolute names and any ".." component are
// refused rather than rewritten: a layer that has them was not made by an
// image builder.
func cleanName(n string) (string, error) {
	if n == "" {
		return "", errors.New("empty name")
	}
	if strings.IndexByte(n, 0) >= 0 {
		return "", errors.New("name contains a NUL byte")
	}
	if len(n) > maxNameLen {
		return "", fmt.Errorf("name longer than %d bytes", maxNameLen)
	}
	if strings.HasPrefix(n, "/") {
		return "", errAbsoluteName
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", errEscapingName
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// cleanLinkTarget validates a hardlink target, a root-relative name like an
// entry name. Some builders (kaniko) write it absolute; that is read as
// relative to the image root, as Docker does.
func cleanLinkTarget(t string) (string, error) {
	if t == "" {
		return "", errors.New("hardlink with an empty target")
	}
	rel := strings.TrimLeft(t, "/")
	if rel == "" {
		return "", fmt.Errorf("hardlink target %q names the image root", t)
	}
	c, err := cleanName(rel)
	if err != nil {
		return "", fmt.Errorf("hardlink target %q: %w", t, err)
	}
	if c == "" {
		return "", fmt.Errorf("hardlink target %q names the image root", t)
	}
	return c, nil
}

// splitName splits a cleaned name into parent ("" for the root) and base.
func splitName(n string) (dir, base string) {
	i := strings.LastIndexByte(n, '/')
	if i < 0 {
		return "", n
	}
	return n[:i], n[i+1:]
}
