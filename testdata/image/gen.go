//go:build ignore

// gen writes the hostile and edge-case layer fixtures used by the image
// package's tests. Run from this directory: go run gen.go
//
// Every escape attempt aims at a file named secrun-escape-marker, so tests
// can look for it outside the destination. The decompression bomb is not
// here: tests generate it.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

type entry struct {
	name     string
	typ      byte
	mode     int64
	link     string
	body     string
	major    int64
	minor    int64
	pax      map[string]string
	uid, gid int
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// CAP_NET_RAW (13) permitted and effective.
func capNetRaw() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	return string(b)
}

var fixtures = map[string][]entry{
	// Names that leave the root.
	"escape-dotdot.tar": {
		{name: "../secrun-escape-marker", typ: tar.TypeReg, mode: 0o644, body: "pwned\n"},
	},
	"escape-nested-dotdot.tar": {
		{name: "a/", typ: tar.TypeDir, mode: 0o755},
		{name: "a/../../secrun-escape-marker", typ: tar.TypeReg, mode: 0o644, body: "pwned\n"},
	},
	"absolute-name.tar": {
		{name: "/tmp/secrun-escape-marker", typ: tar.TypeReg, mode: 0o644, body: "pwned\n"},
	},
	// A symlink, then a write through it, in one layer.
	"symlink-abs-write-through.tar": {
		{name: "evil", typ: tar.TypeSymlink, mode: 0o777, link: "/tmp"},
		{name: "evil/secrun-escape-marker", typ: tar.TypeReg, mode: 0o644, body: "pwned\n"},
	},
	"symlink-rel-write-through.tar": {
		{name: "evil", typ: tar.TypeSymlink, mode: 0o777, link: "../../../../../../../../../../tmp"},
		{name: "evil/secrun-escape-marker", typ: tar.TypeReg, mode: 0o644, body: "pwned\n"},
	},
	"symlink-dir-write-through.tar": {
		{name: "d/", typ: tar.TypeDir, mode: 0o755},
		{name: "d/evil", typ: tar.TypeSymlink, mode: 0o777, link: "../../../../../../../../../.."},
		{name: "d/evil/tmp/secrun-escape-marker", typ: tar.TypeReg, mode: 0o644, body: "pwned\n"},
	},
	// The same attack split over two layers: followed, but confined.
	"symlink-layer1.tar": {
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "evil", typ: tar.TypeSymlink, mode: 0o777, link: "../../../../../../../../../../tmp"},
		{name: "abs", typ: tar.TypeSymlink, mode: 0o777, link: "/tmp"},
	},
	"write-through-layer2.tar": {
		{name: "evil/secrun-escape-marker", typ: tar.TypeReg, mode: 0o644, body: "relative\n"},
		{name: "abs/secrun-escape-marker2", typ: tar.TypeReg, mode: 0o644, body: "absolute\n"},
	},
	// Hardlinks that reach for files outside.
	"hardlink-outside.tar": {
		{name: "h", typ: tar.TypeLink, link: "../../../../../../../../../../etc/passwd"},
	},
	"hardlink-host-absolute.tar": {
		{name: "h", typ: tar.TypeLink, link: "/etc/passwd"},
	},
	"hardlink-through-symlink.tar": {
		{name: "s", typ: tar.TypeSymlink, mode: 0o777, link: "/etc"},
		{name: "h", typ: tar.TypeLink, link: "s/passwd"},
	},
	// A kaniko-style absolute hardlink target inside the image: allowed.
	"hardlink-absolute-inside.tar": {
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/target", typ: tar.TypeReg, mode: 0o644, body: "shared\n"},
		{name: "link", typ: tar.TypeLink, link: "/etc/target"},
	},
	// Whiteouts naming the directory itself or its parent.
	"whiteout-dot.tar": {
		{name: ".wh..", typ: tar.TypeReg, mode: 0o644},
	},
	"whiteout-dotdot.tar": {
		{name: ".wh...", typ: tar.TypeReg, mode: 0o644},
	},
	"whiteout-nested-dotdot.tar": {
		{name: "a/", typ: tar.TypeDir, mode: 0o755},
		{name: "a/.wh...", typ: tar.TypeReg, mode: 0o644},
	},
	"whiteout-empty.tar": {
		{name: "a/.wh.", typ: tar.TypeReg, mode: 0o644},
	},
	"whiteout-meta.tar": {
		{name: ".wh..wh.plnk", typ: tar.TypeDir, mode: 0o755},
	},
	// Device nodes: dropped, not an error.
	"device.tar": {
		{name: "dev/", typ: tar.TypeDir, mode: 0o755},
		{name: "dev/evil-null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		{name: "dev/evil-sda", typ: tar.TypeBlock, mode: 0o660, major: 8, minor: 0},
		{name: "dev/evil-link", typ: tar.TypeLink, link: "dev/evil-sda"},
		{name: "dev/fifo", typ: tar.TypeFifo, mode: 0o600},
		{name: "ok", typ: tar.TypeReg, mode: 0o644, body: "ok\n"},
	},
	// Privilege bits: stripped unless kept.
	"setuid.tar": {
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/su", typ: tar.TypeReg, mode: 0o4755, body: "#!/bin/sh\n"},
		{name: "bin/sg", typ: tar.TypeReg, mode: 0o2755, body: "#!/bin/sh\n", gid: 42},
		{name: "bin/ping", typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\n",
			pax: map[string]string{"SCHILY.xattr.security.capability": capNetRaw()}},
		{name: "bin/plain", typ: tar.TypeReg, mode: 0o750, body: "#!/bin/sh\n", uid: 1000, gid: 1000,
			pax: map[string]string{"SCHILY.xattr.user.note": "kept", "SCHILY.xattr.trusted.overlay.opaque": "y"}},
		{name: "shared/", typ: tar.TypeDir, mode: 0o2775, gid: 50},
	},
}

func main() {
	for name, entries := range fixtures {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			h := &tar.Header{
				Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link,
				Devmajor: e.major, Devminor: e.minor, Uid: e.uid, Gid: e.gid,
				ModTime: epoch, PAXRecords: e.pax, Format: tar.FormatPAX,
			}
			if e.typ == tar.TypeReg {
				h.Size = int64(len(e.body))
			}
			if err := tw.WriteHeader(h); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s: %v\n", name, e.name, err)
				os.Exit(1)
			}
			if e.typ == tar.TypeReg {
				if _, err := tw.Write([]byte(e.body)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}
		if err := tw.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
