package image

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Transport prefixes understood in image references. A reference without a
// prefix names an image in a registry.
const (
	DockerArchivePrefix = "docker-archive:"
	OCILayoutPrefix     = "oci:"
	OCIArchivePrefix    = "oci-archive:"
	dockerPrefix        = "docker://"
)

type transportKind int

const (
	transportRegistry transportKind = iota
	transportDockerArchive
	transportOCI
	transportOCIArchive
)

// reference is a parsed image reference.
type reference struct {
	kind transportKind
	// path and tag are set for the file transports; path is absolute.
	path string
	tag  string
	// reg is set for registry references.
	reg name.Reference
	// name is the normalized form stored in the image store.
	name string
}

// parseReference parses ref. insecure allows a plain-http registry; loopback
// and private-range registries use plain http regardless (as go-containerregistry
// decides).
func parseReference(ref string, insecure bool) (reference, error) {
	if strings.TrimSpace(ref) == "" {
		return reference{}, fmt.Errorf("invalid image reference %q: empty", ref)
	}
	if strings.ContainsAny(ref, "\x00\n\r") {
		return reference{}, fmt.Errorf("invalid image reference %q: control character", ref)
	}
	for _, fp := range []struct {
		prefix string
		t      transportKind
	}{
		{DockerArchivePrefix, transportDockerArchive},
		{OCILayoutPrefix, transportOCI},
		{OCIArchivePrefix, transportOCIArchive},
	} {
		rest, ok := strings.CutPrefix(ref, fp.prefix)
		if !ok {
			continue
		}
		// As in containers/image, the path ends at the first colon; what
		// follows names the image inside the archive or layout.
		p, tag, _ := strings.Cut(rest, ":")
		if p == "" {
			return reference{}, fmt.Errorf("invalid image reference %q: missing path after %q", ref, fp.prefix)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return reference{}, fmt.Errorf("invalid image reference %q: %w", ref, err)
		}
		r := reference{kind: fp.t, path: abs, tag: tag}
		if fp.t == transportDockerArchive && tag != "" {
			if _, err := name.NewTag(tag); err != nil {
				return reference{}, fmt.Errorf("invalid image reference %q: image name in archive: %w", ref, err)
			}
		}
		r.name = fp.prefix + abs
		if tag != "" {
			r.name += ":" + tag
		}
		return r, nil
	}
	s := strings.TrimPrefix(ref, dockerPrefix)
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.ParseReference(s, opts...)
	if err != nil {
		return reference{}, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return reference{kind: transportRegistry, reg: reg, name: reg.Name()}, nil
}

// normalizeName returns the stored name ref would have, or ref itself when
// it does not parse (so that lookups of odd names still compare exactly).
func normalizeName(ref string) string {
	r, err := parseReference(ref, false)
	if err != nil {
		return ref
	}
	return r.name
}
