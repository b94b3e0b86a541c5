package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats Render accepts.
var Formats = []string{"text", "json", "markdown", "html"}

// Render writes r in format (text, json, markdown or html).
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "text", "":
		return renderText(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "markdown", "md":
		return renderMarkdown(w, r)
	case "html":
		return renderHTML(w, r)
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// Verdict is the one-word result.
func (r *Report) Verdict() string {
	if r.Summary.Clean {
		return "CLEAN"
	}
	return "NOT CLEAN"
}

func (r *Report) summaryLine() string {
	s := r.Summary
	line := fmt.Sprintf("%d findings (%d errors, %d warnings); %d tables: %d ok, %d warn, %d fail",
		s.Findings, s.Errors, s.Warnings, s.Tables, s.TablesOK, s.TablesWarn, s.TablesFail)
	if !s.Probed {
		return line + "; probe: not run"
	}
	residue := "no residue"
	if s.Residue > 0 {
		residue = fmt.Sprintf("%d residue", s.Residue)
	}
	return line + fmt.Sprintf("; probe: %d attempts, %d as expected, %d not, %s", s.Attempts, s.Passed, s.Failed, residue)
}

func (d Database) String() string {
	return fmt.Sprintf("%s (oid %d) at %s:%d, PostgreSQL %s, read as %s", d.Name, d.OID, d.Host, d.Port, d.ServerVersion, d.User)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cellText(c MatrixCell) string {
	return fmt.Sprintf("%s: %s", c.Expected, c.Status)
}

func attemptResult(a Attempt) string {
	if a.Passed {
		return "ok"
	}
	return "FAIL"
}

func attemptWho(a Attempt) string {
	if a.Actor == "" {
		return "-"
	}
	if a.Control || a.Victim == a.Actor {
		return a.Actor + "→own"
	}
	return a.Actor + "→" + a.Victim
}

func renderText(w io.Writer, r *Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "dbchat isolation audit: %s\n", r.Verdict())
	fmt.Fprintf(b, "database:  %s\n", r.Database)
	fmt.Fprintf(b, "generated: %s; migration %d\n", r.GeneratedAt.Format(time.RFC3339), r.Migration)
	fmt.Fprintf(b, "summary:   %s\n\n", r.summaryLine())

	fmt.Fprintf(b, "coverage (audit.rls_coverage):\n")
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TABLE\tKIND\tRLS\tFORCED\tPOLICIES\tTENANT COLUMN\tKEYS\tFKS\tVERDICT")
	for _, c := range r.Coverage {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name(), c.Kind, yesNo(c.RLSEnabled), yesNo(c.RLSForced),
			orDash(strings.Join(c.Policies, ",")), orDash(c.TenantColumn), yesNo(c.KeysIncludeTenantID), yesNo(c.ForeignKeysIncludeTenantID), c.Verdict)
	}
	tw.Flush()

	if len(r.Findings) == 0 {
		fmt.Fprintf(b, "\nfindings (audit.findings): none\n")
	} else {
		fmt.Fprintf(b, "\nfindings (audit.findings): %d\n", len(r.Findings))
		for _, f := range r.Findings {
			fmt.Fprintf(b, "  %-5s %s  %s %s\n", f.Level, f.Lint, f.ObjectType, f.Object)
			fmt.Fprintf(b, "        %s\n", f.Detail)
			fmt.Fprintf(b, "        remedy: %s\n", f.Remedy)
		}
	}

	fmt.Fprintf(b, "\nclaims:\n")
	for _, c := range r.Claims {
		fmt.Fprintf(b, "  %-8s %s\n           evidence: %s: %s\n", c.Status, c.Claim, c.Evidence, c.Note)
	}
	for _, f := range r.DistributionKeys {
		fmt.Fprintf(b, "  %s  %s %s: %s\n", f.Lint, f.Table, f.Key, f.Detail)
	}

	fmt.Fprintf(b, "\naccess-control matrix:\n")
	tw = tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  OPERATION\tSAME TENANT\tOTHER TENANT")
	for _, row := range r.Matrix {
		if len(row.Cells) == 1 {
			c := row.Cells[0]
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", row.Operation, cellText(c), "")
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", row.Operation, cellText(row.Cells[0]), cellText(row.Cells[1]))
	}
	tw.Flush()
	if r.Probe == nil {
		fmt.Fprintf(b, "  (no cell is backed yet: run `dbchat audit --probe`)\n")
	} else {
		for _, row := range r.Matrix {
			for _, c := range row.Cells {
				if c.Status != StatusVerified {
					fmt.Fprintf(b, "  %s (%s): %s\n", row.Operation, c.Column, c.Note)
				}
			}
		}
	}

	if p := r.Probe; p != nil {
		fmt.Fprintf(b, "\nprobe: %s .. %s\n", p.StartedAt.Format(time.RFC3339), p.FinishedAt.Format(time.RFC3339))
		for _, t := range p.Tenants {
			fmt.Fprintf(b, "  tenant %s: %s (schema %s, marker %s)\n", t.Label, t.ID, t.Schema, t.Marker)
		}
		for _, u := range p.Unavailable {
			fmt.Fprintf(b, "  not exercised: %s: %s\n", u.What, u.Reason)
		}
		tw = tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tRESULT\tWHO\tCHANNEL\tACTION\tTARGET\tOUTCOME")
		for _, a := range p.Attempts {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, attemptResult(a), attemptWho(a), a.Channel, a.Action, a.Target, a.Outcome)
		}
		tw.Flush()
		fmt.Fprintf(b, "  cleanup: %s\n", cleanupText(p.Cleanup))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cleanupText(c Cleanup) string {
	switch {
	case c.Error != "":
		return "FAILED: " + c.Error
	case !c.Done:
		return "not done"
	case len(c.Residue) > 0:
		return "RESIDUE: " + strings.Join(c.Residue, "; ")
	}
	return "removed " + strings.Join(c.Removed, ", ") + "; verified: no residue"
}

// md escapes a Markdown table cell.
func md(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\\\")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(md(s), "`", "'") + "`"
}

func renderMarkdown(w io.Writer, r *Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# dbchat isolation audit: %s\n\n", r.Verdict())
	fmt.Fprintf(b, "- **Database:** %s\n", md(r.Database.String()))
	fmt.Fprintf(b, "- **Server:** %s\n", md(r.Database.Version))
	fmt.Fprintf(b, "- **Generated:** %s\n", r.GeneratedAt.Format(time.RFC3339))
	fmt.Fprintf(b, "- **Migration:** %d\n", r.Migration)
	fmt.Fprintf(b, "- **Summary:** %s\n\n", md(r.summaryLine()))

	fmt.Fprintf(b, "## Access-control matrix\n\n| Operation | Same tenant | Other tenant |\n|---|---|---|\n")
	for _, row := range r.Matrix {
		if len(row.Cells) == 1 {
			fmt.Fprintf(b, "| %s | %s (%s) | |\n", row.Operation, cellText(row.Cells[0]), md(row.Cells[0].Note))
			continue
		}
		fmt.Fprintf(b, "| %s | %s (%s) | %s (%s) |\n", row.Operation, cellText(row.Cells[0]), md(row.Cells[0].Note), cellText(row.Cells[1]), md(row.Cells[1].Note))
	}

	fmt.Fprintf(b, "\n## Findings (`audit.findings`)\n\n")
	if len(r.Findings) == 0 {
		fmt.Fprintf(b, "None.\n")
	} else {
		fmt.Fprintf(b, "| Level | Lint | Object | Detail | Remedy |\n|---|---|---|---|---|\n")
		for _, f := range r.Findings {
			fmt.Fprintf(b, "| %s | `%s` | %s %s | %s | %s |\n", f.Level, f.Lint, f.ObjectType, mdCode(f.Object), md(f.Detail), mdCode(f.Remedy))
		}
	}

	fmt.Fprintf(b, "\n## Claims\n\n| Claim | Evidence | Status |\n|---|---|---|\n")
	for _, c := range r.Claims {
		fmt.Fprintf(b, "| %s | %s: %s | %s |\n", md(c.Claim), md(c.Evidence), md(c.Note), c.Status)
	}
	if len(r.DistributionKeys) > 0 {
		fmt.Fprintf(b, "\n| Lint | Table | Key | Definition | Detail |\n|---|---|---|---|---|\n")
		for _, f := range r.DistributionKeys {
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", f.Lint, mdCode(f.Table), mdCode(f.Key), mdCode(f.Definition), md(f.Detail))
		}
	}

	fmt.Fprintf(b, "\n## Coverage (`audit.rls_coverage`)\n\n| Table | Kind | RLS | Forced | Policies | Tenant column | Keys | FKs | Verdict | Reason |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Coverage {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdCode(c.Name()), c.Kind, yesNo(c.RLSEnabled), yesNo(c.RLSForced),
			md(strings.Join(c.Policies, ", ")), md(c.TenantColumn), yesNo(c.KeysIncludeTenantID), yesNo(c.ForeignKeysIncludeTenantID), c.Verdict, md(c.Reason))
	}

	fmt.Fprintf(b, "\n## Roles (`audit.roles`)\n\n| Role | Superuser | BYPASSRLS | Login | Inherit | Member of | Members | Owns (rel/fn/schema) |\n|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Roles {
		fmt.Fprintf(b, "| %s | %v | %v | %v | %v | %s | %s | %d/%d/%d |\n", x.Role, x.Superuser, x.BypassRLS, x.Login, x.Inherit,
			md(withTenantRoles(x.MemberOf, x.TenantMemberOf)), md(withTenantRoles(x.Members, x.TenantMembers)), x.OwnedRelations, x.OwnedFunctions, x.OwnedSchemas)
	}

	fmt.Fprintf(b, "\n## Policies (`audit.policies`)\n\n| Table | Policy | Kind | Command | Roles | USING | WITH CHECK |\n|---|---|---|---|---|---|---|\n")
	for _, p := range r.Policies {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdCode(p.Schema+"."+p.Table), md(p.Policy), p.Kind, p.Command,
			md(strings.Join(p.Roles, ", ")), mdCode(p.Using), mdCode(p.WithCheck))
	}
	for _, p := range r.TenantSchemaPolicies {
		fmt.Fprintf(b, "| %d tenant tables, e.g. %s | %s | %s | %s | %s | %s | %s |\n", p.Tables, mdCode(p.Example), md(p.Policy), p.Kind, p.Command,
			md(strings.Join(p.Roles, ", ")), mdCode(p.Using), mdCode(p.WithCheck))
	}

	if p := r.Probe; p != nil {
		fmt.Fprintf(b, "\n## Probe\n\n%s to %s.\n\n", p.StartedAt.Format(time.RFC3339), p.FinishedAt.Format(time.RFC3339))
		for _, t := range p.Tenants {
			fmt.Fprintf(b, "- Tenant %s: `%s` (schema `%s`, marker `%s`)\n", t.Label, t.ID, t.Schema, t.Marker)
		}
		for _, u := range p.Unavailable {
			fmt.Fprintf(b, "- Not exercised: %s: %s\n", md(u.What), md(u.Reason))
		}
		fmt.Fprintf(b, "- Cleanup: %s\n\n", md(cleanupText(p.Cleanup)))
		fmt.Fprintf(b, "| # | Result | Who | Channel | Action | Target | Statement | Expected | Outcome |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, a := range p.Attempts {
			fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", a.ID, attemptResult(a), attemptWho(a), a.Channel, a.Action,
				md(a.Target), mdCode(a.Statement), md(a.Expected), md(a.Outcome))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// withTenantRoles lists names and then the tenant roles by count.
func withTenantRoles(names []string, tenantRoles int) string {
	if tenantRoles > 0 {
		names = append(slices.Clip(names), fmt.Sprintf("%d tenant roles", tenantRoles))
	}
	return strings.Join(names, ", ")
}
