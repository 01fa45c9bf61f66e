package runcfront

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// runcLogLine renders one entry the way runc's logger (logrus) writes it
// with --log-format json or text, so that an engine that reads runc's log
// for the cause of a failure (containerd's shim does, and Docker shows it as
// "OCI runtime create failed: ...") finds secrun-runc's message there.
func runcLogLine(format, level, msg string, now time.Time) ([]byte, error) {
	ts := now.Format(time.RFC3339)
	if format == "json" {
		b, err := json.Marshal(struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Time  string `json:"time"`
		}{level, msg, ts})
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	}
	return fmt.Appendf(nil, "time=%s level=%s msg=%s\n", logfmtValue(ts), level, logfmtValue(msg)), nil
}

// logfmtValue quotes a value as logrus's text formatter does.
func logfmtValue(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/@^+", r)) {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// WriteRuncLog appends an error entry to the --log file in runc's format.
func WriteRuncLog(g Global, msg string, now time.Time) error {
	if g.Log == "" {
		return nil
	}
	line, err := runcLogLine(g.LogFormat, "error", msg, now)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(g.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("runc log %s: %w", g.Log, err)
	}
	_, werr := f.Write(line)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("runc log %s: %w", g.Log, werr)
	}
	return nil
}
