package web_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dbchat/dbchat/internal/dbtest"
)

// signIn signs in from the sign-in screen with the keyboard only: the key
// field has focus, Enter submits.
func (tb *tab) signIn(url, key string) {
	tb.t.Helper()
	tb.run("open", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.ID("api-key")))
	tb.axe("sign in")
	tb.shot("signin")
	tb.run("sign in", chromedp.KeyEvent(key+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("question")), chromedp.WaitVisible(chromedp.ID("signout")))
	// The key is exchanged for an HttpOnly cookie: nothing page script can
	// read holds it, and the page is served under the CSP.
	var kept bool
	var csp string
	tb.run("key not kept", evalJS(`[document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage),
		document.querySelector('#api-key') ? document.querySelector('#api-key').value : ''].some((s) => s.includes(`+strconv.Quote(key)+`))`, &kept),
		evalJS(`fetch('/').then((r) => r.headers.get('Content-Security-Policy') || '')`, &csp))
	if kept {
		tb.t.Errorf("%s: the API key is readable by the page after sign-in", tb.name)
	}
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		tb.t.Errorf("%s: the app's CSP is %q", tb.name, csp)
	}
}

// ask types a question into the chat box, keyboard only (Enter sends it),
// and waits for the streamed answer to finish (aria-busy goes false with
// the done event).
func (tb *tab) ask(question string, turn int) {
	tb.t.Helper()
	sel := `document.querySelectorAll('.turn')[` + strconv.Itoa(turn-1) + `]`
	tb.run("ask "+question, chromedp.Focus(chromedp.ID("question")), chromedp.KeyEvent(question+kb.Enter),
		waitJS(sel+` && `+sel+`.querySelector('.answer[aria-busy="false"]')`))
}

// open goes to a screen through the navigation and waits for sel and for
// the screen to finish loading: a list that arrives late moves the forms
// below it, and a click aimed before it lands would miss.
func (tb *tab) open(screen, sel string) {
	tb.t.Helper()
	tb.run("open "+screen, chromedp.Click(chromedp.CSS(`#nav a[href="#/`+screen+`"]`)), chromedp.WaitVisible(chromedp.CSS(sel)),
		waitJS(`document.querySelector('#main').getAttribute('aria-busy') === 'false'`))
}

// count counts the elements matching a CSS selector.
func (tb *tab) count(sel string) int {
	tb.t.Helper()
	var n int
	tb.run("count "+sel, nodeCount(sel, &n))
	return n
}

// text is the text of the first element matching sel ("" when none).
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	var s string
	tb.run("text of "+sel, evalJS(`(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ''`, &s))
	return s
}

// fetchStatus is the status the page's own fetch of path gets (with its
// cookies, as the app's calls).
func (tb *tab) fetchStatus(path string) int {
	tb.t.Helper()
	var n int
	tb.run("fetch "+path, evalJS(`fetch(`+strconv.Quote(path)+`, {credentials: 'same-origin'}).then((r) => r.status)`, &n))
	return n
}

const xss = `<img src=x onerror=alert(1)>`

// TestWebScenario is issue 16's scenario: one tenant signs in, creates a
// table, uploads a CSV with a bad line (refused with its line and column,
// nothing imported), fixes it, asks a question and a follow-up (streamed
// steps, grid, chart), gives feedback, finds the pair in Training, and
// signs out; a second tenant in another browser context sees none of it.
// Throughout, no dialog opens (the XSS cell stays text), no CSP violation
// or uncaught exception occurs, and axe finds nothing serious on any
// screen.
func TestWebScenario(t *testing.T) {
	app := newAppServer(t)
	shop, _ := app.db.DemoTenant(t, "Shop")
	other := dbtest.NewTenant(t, app.db.Tenants, "Other")
	b := newBrowser(t)
	a := b.tab(t, "shop")
	a.signIn(app.url, shop.APIKey)
	a.axe("chat (empty)")

	a.createTable()
	a.upload(t, "id,name,born\n1,Rex,2020-01-01\n2,"+xss+",2021-02-03\n3,Tom,not-a-date\n")
	if got := a.text("#upload-error"); !strings.Contains(got, `line 4, column "born"`) || !strings.Contains(got, "Nothing was imported") {
		t.Errorf("upload error = %q, want line 4, column born, nothing imported", got)
	}
	if got := a.text(".preview"); got != "No rows yet." {
		t.Errorf("preview after the refused upload = %q", got)
	}
	a.shot("data-upload-error")
	a.upload(t, "id,name,born\n1,Rex,2020-01-01\n2,"+xss+",2021-02-03\n3,Tom,2022-03-04\n")
	a.run("imported", waitJS(`document.querySelector('#upload-ok').textContent.includes('imported 3 rows')`),
		waitJS(`document.querySelectorAll('.preview tbody tr').length === 3`),
		waitJS(`document.querySelector('#table-info').textContent.endsWith(' 3 rows')`),
		waitJS(`document.querySelector('[data-table="pets"] small').textContent.startsWith('3 rows')`))
	var inert bool
	a.run("xss cell", evalJS(`[...document.querySelectorAll('.preview td')].some((td) => td.textContent === `+strconv.Quote(xss)+`) &&
		document.querySelectorAll('img').length === 0`, &inert))
	if !inert {
		t.Errorf("the cell holding %s is not shown as text", xss)
	}
	a.axe("data")
	a.shot("data")

	a.chat()
	a.training()
	a.open("history", "#history-list .history-item")
	if n := a.count("#history-list .history-item"); n < 2 {
		t.Errorf("history shows %d entries, want the 2 questions", n)
	}
	a.axe("history")
	a.shot("history")
	a.admin()
	a.small()

	// Sign out: the session is revoked, not just forgotten by the page.
	a.run("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("api-key")))
	if s := a.fetchStatus("/v1/tables"); s != 401 {
		t.Errorf("after sign out, GET /v1/tables = %d, want 401", s)
	}
	conv := a.lastConversation

	// Another tenant, in its own browser context, sees none of it.
	o := b.tab(t, "other")
	o.signIn(app.url, other.APIKey)
	o.run("other's chat", waitJS(`document.querySelector('.convs ul').textContent.includes('No conversations yet.')`))
	if s := o.fetchStatus("/v1/conversations/" + conv); s != 404 {
		t.Errorf("another tenant's GET of the conversation = %d, want 404", s)
	}
	o.open("data", "nav .list li")
	if got := o.text("nav .list"); got != "No tables." {
		t.Errorf("another tenant's tables: %q", got)
	}
	o.open("history", "#history-list li")
	if got := o.text("#history-list"); got != "Nothing matches." {
		t.Errorf("another tenant's history: %q", got)
	}
	o.shot("history")
}

// createTable creates the pets table from the Data screen.
func (tb *tab) createTable() {
	tb.t.Helper()
	col := func(i int, part string) chromedp.CSS {
		return chromedp.CSS("#create-table .colspec:nth-child(" + strconv.Itoa(i) + ") ." + part)
	}
	addCol := chromedp.Click(chromedp.CSS("#create-table fieldset > button"))
	tb.open("data", "#new-table-name")
	tb.run("create table", chromedp.SetValue(chromedp.ID("new-table-name"), "pets"), chromedp.SetValue(chromedp.ID("new-table-desc"), "Our customers' pets"),
		chromedp.SetValue(col(1, "col-name"), "id"), chromedp.SetValue(col(1, "col-type"), "bigint"),
		addCol, chromedp.SetValue(col(2, "col-name"), "name"),
		addCol, chromedp.SetValue(col(3, "col-name"), "born"), chromedp.SetValue(col(3, "col-type"), "date"),
		chromedp.Click(chromedp.CSS("#create-table button[type=submit]")),
		waitJS(`document.querySelector('#table-title') && document.querySelector('#table-title').textContent === 'pets'`),
		waitJS(`document.querySelector('[data-table="pets"]')`))
}

// upload uploads csv as a file through the Data screen's form.
func (tb *tab) upload(t *testing.T, csv string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pets.csv")
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	tb.run("upload", evalJS[any](`document.querySelector('#upload-error').textContent = ''; document.querySelector('#upload-ok').textContent = ''`, nil),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{file}),
		chromedp.Click(chromedp.CSS("#upload button[type=submit]")),
		waitJS(`document.querySelector('#upload-error').textContent || document.querySelector('#upload-ok').textContent`))
}
