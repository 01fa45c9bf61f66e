package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// Filter selects records for Show. Zero fields match everything.
type Filter struct {
	// Container matches the container ID, an ID prefix of at least 4
	// characters, or the container name.
	Container string
	// Since keeps records at or after this time.
	Since time.Time
	// Kind is an event kind ("container.started") or a glob
	// ("container.*", "seccomp.*").
	Kind string
}

func (f Filter) validate() error {
	if f.Kind != "" {
		if _, err := path.Match(f.Kind, ""); err != nil {
			return fmt.Errorf("audit log show: kind pattern %q: %w", f.Kind, err)
		}
	}
	return nil
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Record) bool {
	if f.Container != "" {
		c := r.Container
		if c.ID != f.Container && c.Name != f.Container && (len(f.Container) < 4 || !strings.HasPrefix(c.ID, f.Container)) {
			return false
		}
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if f.Kind != "" {
		if ok, err := path.Match(f.Kind, r.Kind); err != nil || !ok {
			return false
		}
	}
	return true
}

// Show prints the records of the trail files that match f: a table for
// people, or with asJSON the records' own lines (JSON Lines, unchanged, so
// hashes still verify downstream). Each record's own hash is checked; a
// damaged line stops Show with an error naming it. Show does not check the
// chain; Verify does.
func Show(w io.Writer, paths []string, f Filter, asJSON bool) error {
	if err := f.validate(); err != nil {
		return err
	}
	var tw *tabwriter.Writer
	out := bufio.NewWriter(w)
	if !asJSON {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		if _, err := fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tOUTCOME\tCONTAINER\tIMAGE\tDETAILS"); err != nil {
			return err
		}
	}
	var torn []string
	err := showRecords(paths, func(file string, n int, line []byte, rec Record) error {
		if !f.Match(rec) {
			return nil
		}
		if asJSON {
			_, err := out.Write(append(line, '\n'))
			return err
		}
		_, err := fmt.Fprintln(tw, strings.Join(showRow(rec), "\t"))
		return err
	}, func(file string, n int, size int) {
		torn = append(torn, fmt.Sprintf("%s line %d (%d bytes)", file, n, size))
	})
	if err != nil {
		return err
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, t := range torn {
			if _, err := fmt.Fprintf(out, "(skipped an incomplete final line, never acknowledged: %s)\n", t); err != nil {
				return err
			}
		}
	}
	return out.Flush()
}

// showRecords calls fn for every record of the files in order; an
// unterminated final line of the last file goes to torn instead.
func showRecords(paths []string, fn func(file string, n int, line []byte, rec Record) error, torn func(file string, n int, size int)) error {
	if len(paths) == 0 {
		return errors.New("audit log: no trail files given")
	}
	for i, p := range paths {
		if err := showFile(p, i == len(paths)-1, fn, torn); err != nil {
			return err
		}
	}
	return nil
}

func showFile(p string, last bool, fn func(string, int, []byte, Record) error, torn func(string, int, int)) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, MaxRecordSize)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				if n == 1 {
					return fmt.Errorf("audit log %s: file is empty", p)
				}
				return nil
			}
			if !last {
				return fmt.Errorf("audit log %s line %d: incomplete line in a file that is not the last; run `secrun audit log verify`", p, n)
			}
			torn(p, n, len(line))
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			return fmt.Errorf("audit log %s line %d: line is over %d bytes; run `secrun audit log verify`", p, n, MaxRecordSize)
		case err != nil:
			return fmt.Errorf("audit log %s line %d: %w", p, n, err)
		}
		line = line[:len(line)-1]
		rec, err := ParseRecord(line)
		if err != nil {
			return fmt.Errorf("audit log %s line %d: %w; run `secrun audit log verify`", p, n, err)
		}
		if err := fn(p, n, line, rec); err != nil {
			return err
		}
	}
}

func showRow(r Record) []string {
	ctr := r.Container.Name
	if ctr == "" {
		ctr = showShortID(r.Container.ID)
	}
	img := r.Image.Name
	if img == "" && r.Image.Digest != "" {
		img = r.Image.Digest
	}
	return []string{
		fmt.Sprint(r.Seq),
		r.Time.UTC().Format(time.RFC3339),
		showCell(r.Kind, 40),
		showCell(r.Outcome, 10),
		showCell(showOrDash(ctr), 32),
		showCell(showOrDash(img), 48),
		showCell(showOrDash(showDetails(r)), 160),
	}
}

func showDetails(r Record) string {
	var parts []string
	if r.Reason != "" {
		parts = append(parts, r.Reason)
	}
	if p := r.Policy; p != nil {
		parts = append(parts, "policy="+p.Name)
		var ids []string
		for _, v := range p.Violations {
			if m, ok := v.(map[string]any); ok {
				if id, ok := m["id"].(string); ok {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) == len(p.Violations) && len(ids) > 0 {
			parts = append(parts, "violations="+strings.Join(ids, ","))
		} else if len(p.Violations) > 0 {
			parts = append(parts, fmt.Sprintf("violations=%d", len(p.Violations)))
		}
	}
	if c := r.Checkpoint; c != nil {
		parts = append(parts, fmt.Sprintf("count=%d key=%s", c.Count, c.KeyID))
	}
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := r.Fields[k]
		var s string
		switch v := v.(type) {
		case string:
			s = v
		default:
			b, err := json.Marshal(v)
			if err != nil {
				s = "?"
			} else {
				s = string(b)
			}
		}
		parts = append(parts, k+"="+s)
	}
	return strings.Join(parts, " ")
}

func showShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func showOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// showCell makes untrusted text (container names, reasons) safe for a
// terminal table: no control characters (escape sequences), no tabs, and
// a bounded width.
func showCell(s string, width int) string {
	var b strings.Builder
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if r == utf8.RuneError && size <= 1 || !unicode.IsPrint(r) {
			r = '?'
		}
		if n == width-1 && len(s) > 0 {
			b.WriteRune('…')
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
