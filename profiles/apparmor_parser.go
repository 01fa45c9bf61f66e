package profiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// appArmorParserTimeout bounds one apparmor_parser run; compiling a container
// profile takes well under a second, so hitting it means the parser is stuck.
const appArmorParserTimeout = 2 * time.Minute

// AppArmorParser returns the path of apparmor_parser: from PATH, else from the
// sbin directories distributions install it in (often missing from a
// non-root PATH).
func AppArmorParser() (string, error) {
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"} {
		if p, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("apparmor_parser not found in PATH, /usr/sbin or /sbin: install the apparmor package (Debian/Ubuntu: apt-get install apparmor)")
}

// CheckAppArmor compiles profileText with the real apparmor_parser without
// loading it into the kernel and without touching the profile cache
// (`apparmor_parser -Q -K -T`), so it works on hosts without AppArmor. An
// error carries the parser's diagnostic.
func CheckAppArmor(profileText string) error {
	return runAppArmorParser(profileText, "check apparmor profile", "--skip-kernel-load", "--skip-cache", "--skip-read-cache", "--abort-on-error")
}

// runAppArmorParser feeds profileText to apparmor_parser on stdin with args.
func runAppArmorParser(profileText, what string, args ...string) error {
	parser, err := AppArmorParser()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), appArmorParserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, parser, args...)
	cmd.Stdin = strings.NewReader(profileText)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %s %s: %w: %s", what, parser, strings.Join(args, " "), err, parserDiagnostic(stderr.String()))
	}
	return nil
}

// parserDiagnostic keeps the parser's error lines on one line, dropping the
// cache notices it prints on every run on hosts without AppArmor.
func parserDiagnostic(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "Cache read/write disabled") {
			continue
		}
		keep = append(keep, line)
	}
	if len(keep) == 0 {
		return "no diagnostic from apparmor_parser"
	}
	return strings.Join(keep, "; ")
}
