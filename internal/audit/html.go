package audit

import (
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"
)

// renderHTML writes one self-contained page: inline CSS, no scripts, no
// external assets, so a reviewer can open it offline, archive it or print it.
func renderHTML(w io.Writer, r *Report) error {
	return htmlReport.Execute(w, r)
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"join":    strings.Join,
	"time":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"yesno":   yesNo,
	"who":     attemptWho,
	"result":  attemptResult,
	"cleanup": cleanupText,
	"summary": func(r *Report) string { return r.summaryLine() },
	"lower":   strings.ToLower,
	"status":  func(s string) string { return strings.ReplaceAll(s, " ", "-") },
	"ids": func(ids []int) template.HTML {
		var b strings.Builder
		for i, id := range ids {
			if i > 0 {
				b.WriteString(", ")
			}
			if i == 12 {
				b.WriteString("…")
				break
			}
			n := strconv.Itoa(id)
			b.WriteString(`<a href="#attempt-` + n + `">#` + n + `</a>`)
		}
		return template.HTML(b.String()) //nolint:gosec // integers only
	},
	"cells": func(keys []string) string { return strings.Join(keys, ", ") },
	"nonOwner": func(gs []Grant) []Grant {
		var out []Grant
		for _, g := range gs {
			if !g.IsOwner {
				out = append(out, g)
			}
		}
		return out
	},
}).Parse(htmlTemplate))

const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dbchat isolation audit: {{.Database.Name}} {{time .GeneratedAt}}</title>
<style>
  :root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
  h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
  h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
  table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
  th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
  th { background: var(--bg); font-weight: 600; }
  code, .mono { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-word; }
  .verdict { display: inline-block; padding: .15rem .6rem; border-radius: 1rem; font-weight: 700; color: #fff; }
  .verdict.clean { background: var(--ok); } .verdict.dirty { background: var(--bad); }
  .ok, .verified, .allowed { color: var(--ok); font-weight: 600; }
  .fail, .failed, .ERROR, .FAIL, .NO { color: var(--bad); font-weight: 600; }
  .warn, .WARN, .not-available { color: var(--warn); font-weight: 600; }
  .not-probed { color: var(--muted); font-weight: 600; }
  .muted { color: var(--muted); }
  dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .8rem 0; }
  dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
  .cards { display: flex; gap: .8rem; flex-wrap: wrap; margin: .8rem 0; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .8rem; min-width: 9rem; background: var(--bg); }
  .card b { display: block; font-size: 1.4rem; }
  table.matrix td { width: 38%; } table.matrix td:first-child { width: 24%; font-weight: 600; }
  .remedy { margin-top: .2rem; }
  a { color: inherit; }
  footer { margin-top: 2rem; color: var(--muted); font-size: 12px; }
  @media print {
    body { margin: 0; max-width: none; font-size: 11px; }
    h2 { break-after: avoid; } tr { break-inside: avoid; }
    .verdict { color: #000; border: 2px solid #000; background: none !important; }
  }
</style>
</head>
<body>
<h1>dbchat isolation audit <span class="verdict {{if .Summary.Clean}}clean{{else}}dirty{{end}}">{{.Verdict}}</span></h1>
<dl class="meta">
  <dt>Database</dt><dd><code>{{.Database.Name}}</code> (oid {{.Database.OID}}) at <code>{{.Database.Host}}:{{.Database.Port}}</code>, read as <code>{{.Database.User}}</code></dd>
  <dt>Server</dt><dd>{{.Database.Version}} (up since {{time .Database.StartedAt}})</dd>
  <dt>Generated</dt><dd>{{time .GeneratedAt}}</dd>
  <dt>Migration</dt><dd>{{.Migration}}</dd>
  <dt>Summary</dt><dd>{{summary .}}</dd>
</dl>
<div class="cards">
  <div class="card"><b class="{{if .Summary.Findings}}fail{{else}}ok{{end}}">{{.Summary.Findings}}</b>findings ({{.Summary.Errors}} errors, {{.Summary.Warnings}} warnings)</div>
  <div class="card"><b class="{{if .Summary.TablesFail}}fail{{else}}ok{{end}}">{{.Summary.TablesOK}}/{{.Summary.Tables}}</b>tables fully covered</div>
  {{if .Summary.Probed}}
  <div class="card"><b class="{{if .Summary.Failed}}fail{{else}}ok{{end}}">{{.Summary.Passed}}/{{.Summary.Attempts}}</b>probe attempts as expected</div>
  <div class="card"><b class="{{if .Summary.Residue}}fail{{else}}ok{{end}}">{{.Summary.Residue}}</b>residue after cleanup</div>
  {{else}}
  <div class="card"><b class="not-probed">–</b>probe not run</div>
  {{end}}
</div>

<h2>Access-control matrix</h2>
<p class="muted">Each cell is a claim of the seed's access-control matrix, backed by the live probe's attempts (numbers refer to the attempt list below). Without <code>--probe</code> every cell says "not probed".</p>
<table class="matrix">
<tr><th>Operation</th><th>Same tenant</th><th>Other tenant</th></tr>
{{range .Matrix}}<tr><td>{{.Operation}}</td>
{{- if eq (len .Cells) 1}}{{with index .Cells 0}}<td colspan="2"><span class="{{status .Status}}">{{.Expected}}: {{.Status}}</span><br><span class="muted">{{.Note}}{{if .Attempts}}; {{ids .Attempts}}{{end}}</span></td>{{end}}
{{- else}}{{range .Cells}}<td><span class="{{status .Status}}">{{.Expected}}: {{.Status}}</span><br><span class="muted">{{.Note}}{{if .Attempts}}; {{ids .Attempts}}{{end}}{{if .Failed}}; failed: {{ids .Failed}}{{end}}</span></td>{{end}}{{end}}</tr>
{{end}}</table>

<h2>Findings <span class="muted">(audit.findings)</span></h2>
{{if .Findings}}
<table>
<tr><th>Level</th><th>Lint</th><th>Object</th><th>Detail and remedy</th></tr>
{{range .Findings}}<tr><td class="{{.Level}}">{{.Level}}</td><td><code>{{.Lint}}</code></td><td>{{.ObjectType}} <code>{{.Object}}</code></td><td>{{.Detail}}<div class="remedy">Remedy: <code>{{.Remedy}}</code></div></td></tr>
{{end}}</table>
{{else}}<p class="ok">No findings: every lint passes.</p>{{end}}

<h2>Claims</h2>
<table>
<tr><th>Claim</th><th>Evidence</th><th>Status</th></tr>
{{range .Claims}}<tr><td>{{.Claim}}</td><td><code>{{.Evidence}}</code>: {{.Note}}</td><td class="{{status .Status}}">{{.Status}}</td></tr>
{{end}}</table>
{{if .DistributionKeys}}<table>
<tr><th>Lint</th><th>Table</th><th>Key</th><th>Detail</th></tr>
{{range .DistributionKeys}}<tr><td><code>{{.Lint}}</code></td><td><code>{{.Table}}</code></td><td><code>{{.Key}}</code> <code>{{.Definition}}</code></td><td>{{.Detail}}</td></tr>
{{end}}</table>{{end}}

<h2>Per-table coverage <span class="muted">(audit.rls_coverage)</span></h2>
<table>
<tr><th>Table</th><th>Kind</th><th>RLS</th><th>Forced</th><th>Policies</th><th>Tenant column</th><th>Keys incl. tenant</th><th>FKs incl. tenant</th><th>Verdict</th><th>Reason</th></tr>
{{range .Coverage}}<tr><td><code>{{.Schema}}.{{.Table}}</code></td><td>{{.Kind}}</td><td class="{{yesno .RLSEnabled}}">{{yesno .RLSEnabled}}</td><td class="{{yesno .RLSForced}}">{{yesno .RLSForced}}</td><td><code>{{join .Policies ", "}}</code></td><td><code>{{.TenantColumn}}</code></td><td class="{{yesno .KeysIncludeTenantID}}">{{yesno .KeysIncludeTenantID}}</td><td class="{{yesno .ForeignKeysIncludeTenantID}}">{{yesno .ForeignKeysIncludeTenantID}}</td><td class="{{.Verdict}}">{{.Verdict}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>

<h2>Policies <span class="muted">(audit.policies outside the tenant schemas)</span></h2>
<table>
<tr><th>Table</th><th>Policy</th><th>Kind</th><th>Command</th><th>Roles</th><th>USING</th><th>WITH CHECK</th></tr>
{{range .Policies}}<tr><td><code>{{.Schema}}.{{.Table}}</code></td><td>{{.Policy}}</td><td>{{.Kind}}</td><td>{{.Command}}</td><td>{{join .Roles ", "}}</td><td><code>{{.Using}}</code></td><td><code>{{.WithCheck}}</code></td></tr>
{{end}}</table>

<h3>In the tenant schemas <span class="muted">(counted by kind: a table whose policy differs in anything is a kind of its own)</span></h3>
<table>
<tr><th>Policy</th><th>Kind</th><th>Command</th><th>Roles</th><th>USING</th><th>WITH CHECK</th><th>Tables</th><th>For example</th></tr>
{{range .TenantSchemaPolicies}}<tr><td>{{.Policy}}</td><td>{{.Kind}}</td><td>{{.Command}}</td><td>{{join .Roles ", "}}</td><td><code>{{.Using}}</code></td><td><code>{{.WithCheck}}</code></td><td>{{.Tables}}</td><td><code>{{.Example}}</code></td></tr>
{{end}}</table>

<h2>Roles <span class="muted">(audit.roles)</span></h2>
<table>
<tr><th>Role</th><th>Superuser</th><th>BYPASSRLS</th><th>Login</th><th>Inherit</th><th>Member of</th><th>Members</th><th>Settings</th><th>Owns (relations / functions / schemas)</th></tr>
{{range .Roles}}<tr><td><code>{{.Role}}</code></td><td>{{.Superuser}}</td><td>{{.BypassRLS}}</td><td>{{.Login}}</td><td>{{.Inherit}}</td><td>{{join .MemberOf ", "}}{{if .TenantMemberOf}} <span class="muted">and {{.TenantMemberOf}} tenant roles</span>{{end}}</td><td>{{join .Members ", "}}{{if .TenantMembers}} <span class="muted">and {{.TenantMembers}} tenant roles</span>{{end}}</td><td><code>{{join .Settings ", "}}</code></td><td>{{.OwnedRelations}} / {{.OwnedFunctions}} / {{.OwnedSchemas}}</td></tr>
{{end}}</table>

<h2>Grants <span class="muted">(audit.grants outside the tenant schemas, owners' implicit rights omitted)</span></h2>
<table>
<tr><th>Object</th><th>Grantee</th><th>Privilege</th></tr>
{{range nonOwner .Grants}}<tr><td>{{.ObjectType}} <code>{{.Object}}{{if .Column}} ({{.Column}}){{end}}</code></td><td><code>{{.Grantee}}</code></td><td>{{.Privilege}}{{if .Grantable}} (grantable){{end}}</td></tr>
{{end}}</table>

<h3>In the tenant schemas <span class="muted">(t_&lt;32 hex&gt;, counted by kind; t_&lt;tenant&gt; is the schema's own tenant role, t_&lt;other&gt; another tenant's)</span></h3>
<table>
<tr><th>Object</th><th>Grantee</th><th>Privilege</th><th>Grants</th><th>For example</th></tr>
{{range .TenantSchemaGrants}}<tr><td>{{.ObjectType}}</td><td><code>{{.Grantee}}</code></td><td>{{.Privilege}}{{if .Grantable}} (grantable){{end}}{{if .IsOwner}} <span class="muted">(owner)</span>{{end}}</td><td>{{.Grants}}</td><td><code>{{.Example}}</code></td></tr>
{{end}}</table>

<h2>Live probe</h2>
{{with .Probe}}
<dl class="meta">
  <dt>Ran</dt><dd>{{time .StartedAt}} to {{time .FinishedAt}}</dd>
  {{range .Tenants}}<dt>Tenant {{.Label}}</dt><dd><code>{{.ID}}</code>, schema <code>{{.Schema}}</code>, marker <code>{{.Marker}}</code></dd>
  {{end}}
  {{range .Unavailable}}<dt>Not exercised</dt><dd>{{.What}}: {{.Reason}}</dd>
  {{end}}
  <dt>Cleanup</dt><dd class="{{if or .Cleanup.Residue .Cleanup.Error}}fail{{else}}ok{{end}}">{{cleanup .Cleanup}}</dd>
</dl>
<table>
<tr><th>#</th><th>Result</th><th>Who</th><th>Channel</th><th>Action</th><th>Target</th><th>Statement</th><th>Expected</th><th>Outcome</th><th>Backs</th></tr>
{{range .Attempts}}<tr id="attempt-{{.ID}}"><td>{{.ID}}</td><td class="{{result .}}">{{result .}}</td><td>{{who .}}</td><td>{{.Channel}}</td><td>{{.Action}}</td><td><code>{{.Target}}</code></td><td><code>{{.Statement}}</code></td><td>{{.Expected}}</td><td>{{.Outcome}}</td><td class="muted">{{cells .Cells}}</td></tr>
{{end}}</table>
{{else}}
<p class="not-probed">Not run. <code>dbchat audit --probe --format html</code> creates two throwaway tenants, attacks each one's data from the other through every path, and removes them again.</p>
{{end}}

<footer>
Generated by <code>dbchat audit</code>. Every finding and coverage row comes from the SQL views in the <code>audit</code> schema; a DBA can reproduce them with
<code>SELECT * FROM audit.findings;</code> and <code>SELECT * FROM audit.rls_coverage;</code> as <code>dbchat_auditor</code>. See docs/SECURITY.md, "Auditing isolation".
</footer>
</body>
</html>
`
