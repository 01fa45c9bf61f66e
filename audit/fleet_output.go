package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// WriteTable writes the report for people: one row per container with its
// findings counted by severity, then each container's findings, then the
// summary line.
func (r FleetReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tENGINE\tIMAGE\tPID\tCRITICAL\tHIGH\tMEDIUM\tLOW")
	for _, c := range r.Containers {
		n := c.Counts()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", terminalSafe(c.Label()), c.Engine, terminalSafe(fleetImageText(c)), c.Pid,
			n.Critical, n.High, n.Medium, n.Low)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Containers {
		if len(c.Findings) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s, %s):\n", terminalSafe(c.Label()), c.Engine, terminalSafe(fleetImageText(c)))
		for _, f := range c.Findings {
			fmt.Fprintf(w, "  %-8s %s/%s: %s", f.Severity, f.Source, f.Control, terminalSafe(f.Message))
			if f.Field != "" {
				fmt.Fprintf(w, " (%s)", terminalSafe(f.Field))
			}
			if f.Fix != "" {
				fmt.Fprintf(w, "; %s", terminalSafe(f.Fix))
			}
			if len(f.Details) > 1 {
				fmt.Fprintf(w, " [+%d more: %s]", len(f.Details)-1, terminalSafe(detailsText(f.Details[1:])))
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w)
		for _, e := range r.Errors {
			fmt.Fprintf(w, "could not read %s\n", terminalSafe(e))
		}
	}
	_, err := fmt.Fprintf(w, "\n%s\n", r.Summary())
	return err
}

// moreText names further violations by field (else message), at most a
// few, so one finding stays one line.
func detailsText(ds []Detail) string {
	const max = 6
	var parts []string
	for i, d := range ds {
		if i == max {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, cmp.Or(d.Field, d.Message))
	}
	return strings.Join(parts, ", ")
}

// Label is "name (short id)", or the short id.
func (c FleetContainer) Label() string {
	id := c.ID
	if len(id) > 12 {
		id = id[:12]
	}
	if c.Name == "" {
		return id
	}
	return c.Name + " (" + id + ")"
}

func fleetImageText(c ContainerReport) string {
	switch {
	case c.Image.Ref != "":
		return c.Image.Ref
	case c.Image.Digest != "":
		return c.Image.Digest
	}
	return "-"
}

// safeText keeps names and messages that a container controls (its name,
// its mount paths) from writing control characters to a terminal.
func terminalSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// WriteJSON writes the report as one indented JSON document.
func (r FleetReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// SARIF 2.1.0, the subset code-scanning tools read: one run, the tool's
// rules (every control of every check that ran), and one result per
// finding located at the container.

const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string          `json:"id"`
	Name                 string          `json:"name"`
	ShortDescription     sarifText       `json:"shortDescription"`
	DefaultConfiguration sarifRuleConfig `json:"defaultConfiguration"`
	Properties           sarifRuleProps  `json:"properties"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	SecuritySeverity string   `json:"security-severity"`
	Severity         string   `json:"severity"`
	Tags             []string `json:"tags"`
	Refs             []string `json:"refs,omitempty"`
}

type sarifInvocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	StartTimeUTC        string `json:"startTimeUtc"`
	EndTimeUTC          string `json:"endTimeUtc"`
}

type sarifResult struct {
	RuleID     string            `json:"ruleId"`
	RuleIndex  int               `json:"ruleIndex"`
	Level      string            `json:"level"`
	Message    sarifText         `json:"message"`
	Locations  []sarifLocation   `json:"locations"`
	Properties sarifResultProps  `json:"properties"`
	Partial    map[string]string `json:"partialFingerprints"`
}

type sarifResultProps struct {
	Severity  string `json:"severity"`
	Container string `json:"container"`
	Engine    string `json:"engine"`
	Image     string `json:"image,omitempty"`
	Field     string `json:"field,omitempty"`
	Fix       string `json:"fix,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical         `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// sarifLevel maps a severity to SARIF's levels.
func sarifLevel(sev string) string {
	switch sev {
	case "critical", "high":
		return "error"
	case "medium":
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score code-scanning tools sort by.
func securitySeverity(sev string) string {
	switch sev {
	case "critical":
		return "9.5"
	case "high":
		return "8.0"
	case "medium":
		return "5.5"
	case "low":
		return "3.0"
	}
	return "8.0"
}

// RuleID is how a finding's control is named in SARIF: "SOURCE/CONTROL".
func (f Finding) RuleID() string { return f.Source + "/" + f.Control }

// WriteSARIF writes the report as a SARIF 2.1.0 log.
func (r FleetReport) WriteSARIF(w io.Writer) error {
	index := map[string]int{}
	var rules []sarifRule
	addRule := func(source string, id, sev, desc string, refs []string) {
		rid := source + "/" + id
		if _, ok := index[rid]; ok {
			return
		}
		index[rid] = len(rules)
		rules = append(rules, sarifRule{
			ID: rid, Name: id, ShortDescription: sarifText{Text: desc},
			DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(sev)},
			Properties:           sarifRuleProps{SecuritySeverity: securitySeverity(sev), Severity: sev, Tags: []string{"security", "container", source}, Refs: refs},
		})
	}
	for _, c := range r.Controls {
		addRule(c.Source, c.ID, c.Severity, c.Description, c.Refs)
	}
	results := []sarifResult{}
	for _, c := range r.Containers {
		loc := sarifLocation{LogicalLocations: []sarifLogicalLocation{{
			Name: c.Label(), FullyQualifiedName: c.Engine + "://" + c.ID, Kind: "resource",
		}}}
		if c.Bundle != "" {
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifFileURI(filepath.Join(c.Bundle, "config.json"))}}
		}
		for _, f := range c.Findings {
			// A control the run did not list (a policy without a
			// controls object) still gets a rule.
			addRule(f.Source, f.Control, f.Severity, f.Control, nil)
			msg := f.Message
			if f.Fix != "" {
				msg += "; fix: " + f.Fix
			}
			if len(f.Details) > 1 {
				msg += fmt.Sprintf(" (%d violations: %s)", len(f.Details), detailsText(f.Details))
			}
			results = append(results, sarifResult{
				RuleID: f.RuleID(), RuleIndex: index[f.RuleID()], Level: sarifLevel(f.Severity),
				Message:   sarifText{Text: msg},
				Locations: []sarifLocation{loc},
				Properties: sarifResultProps{Severity: f.Severity, Container: c.Label(), Engine: c.Engine,
					Image: fleetImageText(c), Field: f.Field, Fix: f.Fix},
				Partial: map[string]string{"secrunFinding/v1": c.Engine + "/" + c.ID + "/" + f.RuleID() + "/" + f.Field},
			})
		}
	}
	if rules == nil {
		rules = []sarifRule{}
	}
	log := sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{{
		Tool: sarifTool{Driver: sarifDriver{Name: "secrun audit", InformationURI: "https://github.com/secrun/secrun", Rules: rules}},
		Invocations: []sarifInvocation{{
			ExecutionSuccessful: len(r.Errors) == 0,
			StartTimeUTC:        r.Started.UTC().Format(time.RFC3339Nano),
			EndTimeUTC:          r.Started.Add(r.Duration).UTC().Format(time.RFC3339Nano),
		}},
		Results: results,
	}}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func sarifFileURI(p string) string {
	return (&url.URL{Scheme: "file", Path: p}).String()
}
