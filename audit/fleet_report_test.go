package audit_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
)

var updateGolden = flag.Bool("update-fleet", false, "rewrite the golden files under testdata/fleet")

const fleetTestdata = "../testdata/fleet"

// sampleReport is a report as AuditFleet builds it, with one container of
// each kind of finding.
func fleetSampleReport() audit.FleetReport {
	start := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	return audit.FleetReport{
		Started: start, Duration: 412 * time.Millisecond, Host: "node1", FailOn: "high",
		CIS: "cis-docker", CISHash: "sha256:c1", HostInfo: policy.HostInfo{LSM: []string{}, Cgroup: "v2"},
		Controls: []audit.ControlInfo{
			{Source: "cis-docker", Control: policy.Control{ID: "privileged", Severity: "critical", Description: "Privileged containers are not used.", Refs: []string{"CIS Docker 5.4"}}},
			{Source: "cis-docker", Control: policy.Control{ID: "capabilities", Severity: "high", Description: "No capability beyond Docker's default set is granted."}},
			{Source: "cis-docker", Control: policy.Control{ID: "cpu-limit", Severity: "low", Description: "CPU use is limited."}},
			{Source: "drift", Control: audit.DriftControls[0]},
		},
		Containers: []audit.ContainerReport{
			{FleetContainer: audit.FleetContainer{ID: "09f2f82b36875c620f83f2e98f76a213c59f8d2df0fc8e9362bdc07812d53efb", Name: "web", Engine: "docker",
				Pid: 4242, Bundle: "/run/containerd/io.containerd.runtime.v2.task/moby/09f2f82b3687", Image: policy.ImageInfo{Ref: "busybox:fleet", Identity: true}},
				Findings: []audit.Finding{
					{Control: "privileged", Source: "cis-docker", Severity: "critical", Message: "privileged containers are not allowed", Field: "request.privileged=true", Fix: "drop --privileged"},
					{Control: "capabilities", Source: "cis-docker", Severity: "high", Message: "capability CAP_SYS_ADMIN is not allowed", Field: "spec.process.capabilities.bounding=CAP_SYS_ADMIN", Fix: "drop --cap-add SYS_ADMIN",
						Details: []audit.Detail{
							{Message: "capability CAP_SYS_ADMIN is not allowed", Field: "spec.process.capabilities.bounding=CAP_SYS_ADMIN"},
							{Message: "capability CAP_NET_ADMIN is not allowed", Field: "spec.process.capabilities.bounding=CAP_NET_ADMIN"},
						}},
					{Control: "drift-capabilities", Source: "drift", Severity: "high", Message: "processes hold capabilities the spec does not declare\x1b[31m", Fix: "recreate the container"},
				}},
			{FleetContainer: audit.FleetContainer{ID: "abc", Engine: "runc", Pid: 77, Image: policy.ImageInfo{}},
				Findings: []audit.Finding{{Control: "cpu-limit", Source: "cis-docker", Severity: "low", Message: "no CPU limit is set"}}},
			{FleetContainer: audit.FleetContainer{ID: "def", Name: "clean", Engine: "podman", Pid: 78, Image: policy.ImageInfo{Ref: "localhost/app:1"}},
				Findings: []audit.Finding{}},
		},
	}
}

func fleetGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join(fleetTestdata, name)
	if *updateGolden {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update-fleet once to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

func TestFleetReportTable(t *testing.T) {
	var b bytes.Buffer
	if err := fleetSampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(b.Bytes(), 0x1b) {
		t.Error("a control character from a finding reached the terminal")
	}
	fleetGolden(t, "report.table.golden", b.Bytes())
}

func TestFleetReportCounts(t *testing.T) {
	r := fleetSampleReport()
	c := r.Counts()
	if c != (audit.Counts{Critical: 1, High: 2, Low: 1}) || c.Total() != 4 {
		t.Errorf("counts %+v", c)
	}
	for _, tc := range []struct {
		failOn  string
		failing int
	}{{"low", 2}, {"medium", 1}, {"high", 1}, {"critical", 1}, {"none", 0}} {
		r.FailOn = tc.failOn
		if got := r.Failing(); got != tc.failing || r.Failed() != (tc.failing > 0) {
			t.Errorf("fail-on %s: %d failing, want %d", tc.failOn, got, tc.failing)
		}
	}
	for _, s := range []string{"low", "medium", "high", "critical", "none"} {
		if err := audit.CheckFailOn(s); err != nil {
			t.Error(err)
		}
	}
	if err := audit.CheckFailOn("severe"); err == nil {
		t.Error("--fail-on severe accepted")
	}
	if !strings.Contains(fleetSampleReport().Summary(), "audited 3 containers (docker 1, podman 1, runc 1) in 412ms: 1 critical, 2 high, 0 medium, 1 low findings; 1 container at or above high") {
		t.Errorf("summary %q", fleetSampleReport().Summary())
	}
}

func TestFleetReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := fleetSampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back audit.FleetReport
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Counts() != fleetSampleReport().Counts() || back.Containers[0].Findings[1].Details[1].Field != "spec.process.capabilities.bounding=CAP_NET_ADMIN" {
		t.Errorf("round trip lost findings: %+v", back.Containers[0].Findings)
	}
}

// TestFleetReportSARIF checks the parts of SARIF 2.1.0 that code-scanning
// tools rely on: every result names a rule the driver lists, at the index
// it gives, with a valid level, located at the container.
func TestFleetReportSARIF(t *testing.T) {
	var b bytes.Buffer
	if err := fleetSampleReport().WriteSARIF(&b); err != nil {
		t.Fatal(err)
	}
	fleetGolden(t, "report.sarif.golden", b.Bytes())
	var log struct {
		Schema  string `json:"$schema"`
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID               string `json:"id"`
						ShortDescription struct{ Text string }
						Default          struct {
							Level string `json:"level"`
						} `json:"defaultConfiguration"`
						Properties map[string]any `json:"properties"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct{ Text string }
				Locations []struct {
					LogicalLocations []struct {
						Name, FullyQualifiedName, Kind string
					} `json:"logicalLocations"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || !strings.Contains(log.Schema, "sarif-2.1.0") || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name == "" {
		t.Fatalf("not a SARIF 2.1.0 log: %s", b.Bytes()[:200])
	}
	run := log.Runs[0]
	ids := map[string]bool{}
	for _, r := range run.Tool.Driver.Rules {
		if ids[r.ID] || r.ShortDescription.Text == "" || r.Properties["security-severity"] == nil {
			t.Errorf("rule %+v: duplicate, undescribed or without security-severity", r)
		}
		ids[r.ID] = true
	}
	var got []string
	for _, res := range run.Results {
		got = append(got, res.RuleID+"@"+res.Locations[0].LogicalLocations[0].Name)
		if res.RuleIndex < 0 || res.RuleIndex >= len(run.Tool.Driver.Rules) || run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %s: ruleIndex %d does not point at its rule", res.RuleID, res.RuleIndex)
		}
		if !slices.Contains([]string{"error", "warning", "note"}, res.Level) || res.Message.Text == "" {
			t.Errorf("result %+v", res)
		}
		if loc := res.Locations[0].LogicalLocations[0]; loc.Kind != "resource" || !strings.Contains(loc.FullyQualifiedName, "://") {
			t.Errorf("location %+v", loc)
		}
	}
	want := []string{"cis-docker/privileged@web (09f2f82b3687)", "cis-docker/capabilities@web (09f2f82b3687)",
		"drift/drift-capabilities@web (09f2f82b3687)", "cis-docker/cpu-limit@abc"}
	if !slices.Equal(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
}

// TestFleetReportEvent records a run in a real trail: the event passes the
// trail's checks and verifies.
func TestFleetReportEvent(t *testing.T) {
	dir := t.TempDir()
	tr, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Options{Host: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	ev := fleetSampleReport().Event()
	if ev.Kind != audit.KindAuditRun || ev.Outcome != audit.OutcomeFailure || ev.Fields["fleet.findings.critical"] != 1 ||
		ev.Fields["fleet.containers"] != 3 || ev.Fields["fleet.engine.docker"] != 1 {
		t.Errorf("event %+v", ev)
	}
	rec, err := tr.Append(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.Kind != audit.KindAuditRun || !strings.Contains(rec.Reason, "audited 3 containers") {
		t.Errorf("record %+v", rec)
	}
	files, err := audit.Files(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(files, nil); err != nil {
		t.Fatal(err)
	}
	clean := fleetSampleReport()
	clean.FailOn = "none"
	if clean.Event().Outcome != audit.OutcomeSuccess {
		t.Error("an audit that fails nothing is not a success")
	}
}
