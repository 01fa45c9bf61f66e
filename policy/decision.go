package policy

import (
	"cmp"
	"slices"
	"strings"
)

// DeniedPrefix starts every line of a denial, so that a user reading a
// failed run's output can tell a policy decision from an error.
const DeniedPrefix = "secrun: denied by policy: "

// Severities, from least to most severe. A violation's Severity is one of
// these when the policy follows the library's shape.
var Severities = []string{"low", "medium", "high", "critical"}

// Decision is the outcome of evaluating a policy over one input. It is a
// value: a denial is not an error. Allowed is true only when the policy said
// allow and listed no violation.
type Decision struct {
	Allowed    bool        `json:"allowed"`
	Violations []Violation `json:"violations"`
	// Exempted are violations that matched an exemption in the policy data.
	// They do not deny; they are kept for the audit trail.
	Exempted   []Violation `json:"exempted,omitempty"`
	Policy     string      `json:"policy"`
	PolicyHash string      `json:"policy_hash"`
	InputHash  string      `json:"input_hash"`
	// Reason explains a denial that the violations alone do not: an
	// evaluation error, an undefined or malformed result.
	Reason string `json:"reason,omitempty"`
	// Cached is set when the decision came from the decision cache: the
	// same policy allowed an input equal in every field it reads.
	Cached bool `json:"cached,omitempty"`
}

// Violation is one broken rule: which control, what is wrong, the input
// field (with its value when short) and how to fix it.
type Violation struct {
	ID       string `json:"id"`
	Msg      string `json:"msg"`
	Field    string `json:"field"`
	Fix      string `json:"fix"`
	Severity string `json:"severity"`
}

// String renders the violation as one line:
// "privileged: privileged containers are not allowed (request.privileged=true); drop --privileged".
func (v Violation) String() string {
	var b strings.Builder
	id := v.ID
	if id == "" {
		id = "policy"
	}
	b.WriteString(id)
	b.WriteString(": ")
	msg := v.Msg
	if msg == "" {
		msg = "violation without a message"
	}
	b.WriteString(oneLine(msg))
	if v.Field != "" {
		b.WriteString(" (")
		b.WriteString(oneLine(v.Field))
		b.WriteString(")")
	}
	if v.Fix != "" {
		b.WriteString("; ")
		b.WriteString(oneLine(v.Fix))
	}
	return b.String()
}

// Err returns nil when the decision allows, and a *DeniedError otherwise.
// A zero Decision denies.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &DeniedError{Policy: d.Policy, Violations: slices.Clone(d.Violations), Reason: d.Reason}
}

// DeniedError is a policy denial as an error, for callers that map errors to
// exit codes (secrun exits 126 on it). Policy load failures that make every
// decision a denial (a policy that does not compile) are DeniedErrors too.
type DeniedError struct {
	Policy     string
	Violations []Violation
	Reason     string
}

// Error is one line per violation, then the reason if any, each line
// starting with DeniedPrefix.
func (e *DeniedError) Error() string {
	var lines []string
	for _, v := range e.Violations {
		lines = append(lines, DeniedPrefix+v.String())
	}
	if e.Reason != "" {
		lines = append(lines, DeniedPrefix+oneLine(e.Reason))
	}
	if len(lines) == 0 {
		lines = append(lines, DeniedPrefix+"the policy gave no reason")
	}
	return strings.Join(lines, "\n")
}

func severityRank(s string) int {
	return slices.Index(Severities, s)
}

// sortViolations orders the most severe first, then by id and field, so
// output and hashes of decisions are stable.
func sortViolations(vs []Violation) {
	slices.SortFunc(vs, func(a, b Violation) int {
		if c := cmp.Compare(severityRank(b.Severity), severityRank(a.Severity)); c != 0 {
			return c
		}
		return cmp.Or(
			cmp.Compare(a.ID, b.ID),
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Msg, b.Msg),
			cmp.Compare(a.Fix, b.Fix),
		)
	})
}

// oneLine keeps text that came from a policy on one line, so that one
// violation is always one line of output.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
