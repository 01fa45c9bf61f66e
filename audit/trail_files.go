package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

type rotatedFile struct {
	path string
	n    int
}

// rotatedFiles lists path.1, path.2, ... (oldest first) that exist.
func rotatedFiles(path string) ([]rotatedFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit trail %s: listing rotated files: %w", path, err)
	}
	var out []rotatedFile
	for _, e := range ents {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || suffix == "" || suffix[0] == '0' || strings.TrimLeft(suffix, "0123456789") != "" {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n <= 0 {
			continue
		}
		out = append(out, rotatedFile{path: filepath.Join(dir, e.Name()), n: n})
	}
	slices.SortFunc(out, func(a, b rotatedFile) int { return a.n - b.n })
	return out, nil
}

// Files lists the files of the trail at path in chain order: the rotated
// files path.1, path.2, ... and then path itself. It is what
// `secrun audit log verify` and `show` read when given no files.
func Files(path string) ([]string, error) {
	rot, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rot {
		out = append(out, r.path)
	}
	if _, err := os.Lstat(path); err == nil {
		out = append(out, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit trail %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("audit trail %s: %w (no trail has been written there yet)", path, fs.ErrNotExist)
	}
	return out, nil
}
