//go:build !secrun_noengine

package policy

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Explain writes the active policy's controls (`secrun policy explain`):
// its name and hash, then one line per control with id, severity,
// description and references.
func (e *Engine) Explain(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "policy %s (%s)\n", e.name, e.hash); err != nil {
		return fmt.Errorf("write policy explanation: %w", err)
	}
	controls := e.Controls()
	if len(controls) == 0 {
		_, err := fmt.Fprintf(w, "the policy declares no controls (define a `controls` object in package %s to list them here)\n", policyPackage)
		if err != nil {
			return fmt.Errorf("write policy explanation: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tDESCRIPTION\tREFERENCES")
	for _, c := range controls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Severity, oneLine(c.Description), strings.Join(c.Refs, "; "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write policy explanation: %w", err)
	}
	return nil
}
