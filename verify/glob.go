package verify

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"
)

// Image patterns in the trust config:
//
//	*   any run of characters except '/'
//	**  any run of characters, '/' included
//	?   one character except '/'
//
// Everything else matches itself. "127.0.0.1:*/team/*" matches
// "127.0.0.1:5000/team/app" but not "127.0.0.1:5000/team/sub/app";
// "oci:**" matches every OCI layout reference. Registry references are
// matched by repository, without tag or digest, in both their written and
// fully qualified forms ("busybox" and "index.docker.io/library/busybox").

// checkPattern rejects patterns that cannot be meant: empty ones and ones with
// spaces or control characters, which no reference contains.
func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty image pattern")
	}
	for _, r := range p {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("image pattern %q contains a space or control character", p)
		}
	}
	if strings.Contains(p, "***") {
		return fmt.Errorf("image pattern %q contains ***; use * (one path segment) or ** (any depth)", p)
	}
	return nil
}

// globMatch reports whether s matches pattern p. It runs in O(len(p)*len(s))
// time whatever the pattern, so a hostile trust file cannot stall it.
func globMatch(p, s string) bool {
	// prev[j] is whether p[:i] matches s[:j] for the previous row i.
	prev := make([]bool, len(s)+1)
	cur := make([]bool, len(s)+1)
	prev[0] = true
	for i := 0; i < len(p); {
		tok, width := p[i], 1
		if tok == '*' && i+1 < len(p) && p[i+1] == '*' {
			width = 2
		}
		switch {
		case tok == '*' && width == 2:
			cur[0] = prev[0]
			for j := 1; j <= len(s); j++ {
				cur[j] = prev[j] || cur[j-1]
			}
		case tok == '*':
			cur[0] = prev[0]
			for j := 1; j <= len(s); j++ {
				cur[j] = prev[j] || (cur[j-1] && s[j-1] != '/')
			}
		case tok == '?':
			cur[0] = false
			for j := 1; j <= len(s); j++ {
				cur[j] = prev[j-1] && s[j-1] != '/'
			}
		default:
			cur[0] = false
			for j := 1; j <= len(s); j++ {
				cur[j] = prev[j-1] && s[j-1] == tok
			}
		}
		prev, cur = cur, prev
		i += width
	}
	return prev[len(s)]
}

// transports are reference prefixes that name local files, not registries.
var transports = []string{"oci:", "oci-archive:", "docker-archive:"}

// matchNames is the list of names a reference is matched under.
func matchNames(ref string) []string {
	for _, t := range transports {
		if strings.HasPrefix(ref, t) {
			return []string{ref}
		}
	}
	ref = strings.TrimPrefix(ref, "docker://")
	r, err := name.ParseReference(ref)
	if err != nil {
		return []string{ref}
	}
	repo := r.Context()
	names := []string{repo.Name()}
	if repo.RegistryStr() == name.DefaultRegistry {
		names = append(names, "docker.io/"+repo.RepositoryStr())
	}
	written := ref
	if i := strings.LastIndex(written, "@"); i >= 0 {
		written = written[:i]
	}
	if i := strings.LastIndex(written, ":"); i > strings.LastIndex(written, "/") {
		written = written[:i]
	}
	for _, n := range names {
		if n == written {
			return names
		}
	}
	return append(names, written)
}
