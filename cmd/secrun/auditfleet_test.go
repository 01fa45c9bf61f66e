package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrun/secrun/audit"
)

// lowFinding is an active policy that admits everything but reports one
// low-severity violation on every container, so exit statuses do not
// depend on what the built-in libraries think of secrun's defaults.
const lowFinding = `package secrun

allow := true

deny contains {"id": "fleet-test", "msg": "every container gets this finding", "severity": "low"} if input.request.source == "audit"
`

func TestAuditFleetCommand(t *testing.T) {
	c := newCLI(t)
	code, out, stderr := c.run("--policy", c.policyFile(allowAll), "run", "-d", "--name", "fleet-own", c.layout, "sleep", "1000")
	if code != 0 {
		t.Fatalf("run -d: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(out)
	t.Cleanup(func() { c.run("rm", "-f", id) })
	pol := c.policyFile(lowFinding)
	auditRuns := func() int {
		t.Helper()
		code, out, stderr := c.run("audit", "log", "show", "--kind", "audit.run", "--json")
		if code != 0 {
			t.Fatalf("audit log show: exit %d: %s", code, stderr)
		}
		return strings.Count(out, "\n")
	}

	t.Run("json finds secrun's own container", func(t *testing.T) {
		code, out, stderr := c.run("--policy", pol, "audit", "--no-default-paths", "--format", "json", "--fail-on", "critical")
		if code != 0 {
			t.Fatalf("exit %d, want 0: %s", code, stderr)
		}
		var rep audit.FleetReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var own *audit.ContainerReport
		for i := range rep.Containers {
			if rep.Containers[i].ID == id {
				own = &rep.Containers[i]
			}
		}
		if own == nil || own.Engine != audit.EngineSecrun || own.Name != "fleet-own" || own.Effective == nil {
			t.Fatalf("own container not audited: %s", out)
		}
		var policyFinding bool
		for _, f := range own.Findings {
			policyFinding = policyFinding || f.Control == "fleet-test"
			if f.Source == audit.SourceDrift || f.Source == audit.SourceAudit {
				t.Errorf("secrun's own container drifts or is unreadable: %s", f)
			}
		}
		if !policyFinding || rep.CIS != "cis-docker" {
			t.Errorf("the active policy and cis-docker must both run: %+v", own.Findings)
		}
	})
	t.Run("fail-on sets the exit status", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
		}{
			{[]string{"--no-cis", "--fail-on", "low"}, 1},
			{[]string{"--no-cis", "--fail-on", "medium"}, 0},
			{[]string{"--no-cis", "--fail-on", "none"}, 0},
		} {
			code, out, stderr := c.run(append([]string{"--policy", pol, "audit", "--no-default-paths"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, "fleet-own") || !strings.Contains(out, "audited ") {
				t.Errorf("%v: exit %d, want %d\n%s%s", tc.args, code, tc.code, out, stderr)
			}
		}
	})
	t.Run("sarif", func(t *testing.T) {
		_, out, stderr := c.run("--policy", pol, "audit", "--no-default-paths", "--format", "sarif")
		var log struct {
			Version string `json:"version"`
			Runs    []struct {
				Results []struct {
					RuleID string `json:"ruleId"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(out), &log); err != nil || log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
			t.Errorf("not SARIF 2.1.0 with results: %v\n%s%s", err, out, stderr)
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		before := auditRuns()
		for _, args := range [][]string{{"--fail-on", "severe"}, {"--format", "xml"}, {"--watch", "1ms"}} {
			code, _, stderr := c.run(append([]string{"audit", "--no-default-paths"}, args...)...)
			if code != 125 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("%v: exit %d, stderr %q; want 125 and one line", args, code, stderr)
			}
		}
		if after := auditRuns(); after != before {
			t.Errorf("a refused invocation was recorded as an audit run (%d -> %d)", before, after)
		}
	})
	t.Run("every run is in the audit trail", func(t *testing.T) {
		before := auditRuns()
		c.run("--policy", pol, "audit", "--no-default-paths")
		if after := auditRuns(); after != before+1 {
			t.Errorf("audit.run records %d -> %d, want one more", before, after)
		}
		code, _, stderr := c.run("audit", "log", "verify")
		if code != 0 {
			t.Errorf("trail does not verify: %s", stderr)
		}
	})
	t.Run("watch", func(t *testing.T) {
		before := auditRuns()
		cmd := exec.Command(c.bin, "--root", c.root, "--policy", pol, "audit", "--no-default-paths", "--no-cis", "--fail-on", "low", "--watch", "1s")
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stdout
		cmd.Env = append(os.Environ(), "SECRUN_POLICY=", "SECRUN_TRUST=")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for auditRuns() < before+2 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("--watch 1s did not audit twice in 60s:\n%s", stdout.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("watch ended with %v, want exit 1 (the last audit found a low finding)\n%s", err, stdout.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("--watch did not stop on SIGINT:\n%s", stdout.String())
		}
		if n := strings.Count(stdout.String(), "audited "); n < 2 {
			t.Errorf("%d reports written, want at least 2", n)
		}
	})
}
