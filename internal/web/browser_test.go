package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/server"
)

// The end-to-end harness: the real server (server.New over a fresh
// migrated database, the SQL sandbox and the offline generator) behind
// httptest, driven by the system's headless Chromium over the DevTools
// protocol. A missing browser fails the test: `make test` installs it
// (make chromium), and a skipped browser test would prove nothing.

// chromiumPath is the browser the tests drive: DBCHAT_CHROMIUM or Debian's.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("DBCHAT_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no Chromium at %s (%v): run `make chromium` (Debian's chromium package) or set DBCHAT_CHROMIUM", p, err)
	}
	return p
}

// appServer starts the API and the web app over a fresh database; seed
// runs with its tenant.DB before the server takes requests.
type appServer struct {
	url string
	db  *dbtest.Sandboxed
}

func newAppServer(t *testing.T) *appServer {
	t.Helper()
	d := dbtest.NewSandboxed(t, 4)
	store := &nlsql.Store{DB: d.Tenants, Embedder: embed.NewLocal()}
	asker := ask.New(d.Tenants, d.SQL, store, generate.NewOffline())
	srv := httptest.NewServer(server.New(d.Tenants, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{SQL: d.SQL, Ask: asker}))
	t.Cleanup(srv.Close)
	return &appServer{url: srv.URL, db: d}
}

// browser is one headless Chromium; each tab gets a browser context of its
// own (its own cookies), as two people on two machines would.
type browser struct {
	root context.Context
	out  string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true), chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath(t), err)
	}
	return &browser{root: root, out: screenshotDir(t)}
}

// screenshotDir is where screenshots go: DBCHAT_E2E_OUT, else
// testdata/screenshots (ignored by git).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DBCHAT_E2E_OUT")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tab is a page in a fresh browser context. It records what must never
// happen: a JavaScript dialog (an injected script ran), an uncaught
// exception, a CSP violation.
type tab struct {
	t    *testing.T
	ctx  context.Context
	name string
	mu   sync.Mutex
	bad  []string
	// lastConversation is the id of the conversation chat left open.
	lastConversation string
}

func (b *browser) tab(t *testing.T, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, name: name}
	if err := chromedp.Listen(ctx, tb.listen); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// The page reports CSP violations to the console, where listen sees
	// them; this listener is added over the DevTools protocol, which the
	// page's CSP does not govern.
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, runtime.Enable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspListener})
		return err
	}))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(tb.checkClean)
	return tb
}

const cspListener = `document.addEventListener('securitypolicyviolation', (e) =>
	console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI + ' at ' + e.sourceFile + ':' + e.lineNumber));`

// listen runs in the tab's message loop: it only records (a dialog is
// dismissed from another goroutine, as a command may not run here).
func (tb *tab) listen(ev any) {
	switch ev := ev.(type) {
	case *page.EventJavascriptDialogOpening:
		tb.problem("a JavaScript dialog opened (%s): %q", ev.Type, ev.Message)
		go func() {
			_, _ = chromedp.Call(tb.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}()
	case *runtime.EventExceptionThrown:
		tb.problem("uncaught exception: %s", exceptionText(ev.ExceptionDetails))
	case *runtime.EventConsoleAPICalled:
		for _, a := range ev.Args {
			if s := string(a.Value); strings.Contains(s, "CSP violation") || strings.Contains(s, "Content Security Policy") {
				tb.problem("console: %s", s)
			}
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Source == cdplog.EntrySourceSecurity || strings.Contains(ev.Entry.Text, "Content Security Policy") {
			tb.problem("browser log (%s): %s", ev.Entry.Source, ev.Entry.Text)
		}
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

func (tb *tab) problem(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.bad = append(tb.bad, fmt.Sprintf(format, args...))
}

// checkClean fails the test with everything the tab recorded.
func (tb *tab) checkClean() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.bad {
		tb.t.Errorf("%s: %s", tb.name, p)
	}
}

// run runs actions with a deadline; on failure it saves a screenshot of
// the page as it was, named after the step.
func (tb *tab) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.shot("FAILED-" + step)
		tb.t.Fatalf("%s: %s: %v", tb.name, step, err)
	}
}

// shot saves a full-page screenshot as <tab>-<name>.png.
func (tb *tab) shot(name string) {
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	// A passing toast would hide part of the page in the picture.
	_ = chromedp.Do(ctx, evalJS[any](`document.getElementById('toast').textContent = ''`, nil))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("%s: screenshot %s: %v", tb.name, name, err)
		return
	}
	key := fileName(tb.name + "-" + name)
	files := []string{filepath.Join(screenshotDir(tb.t), key+".png")}
	if dir := os.Getenv("DBCHAT_SCREENSHOTS"); dir != "" && docShots[key] != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join("..", "..", dir) // from the repository's root
		}
		files = append(files, filepath.Join(dir, docShots[key]))
	}
	for _, f := range files {
		if err := os.WriteFile(f, png, 0o644); err != nil {
			tb.t.Errorf("%s: %v", f, err)
		}
	}
}

// docShots are the screenshots the README shows, by the name shot gives
// them: make screenshots (DBCHAT_SCREENSHOTS=docs/img) refreshes them.
var docShots = map[string]string{
	"shop-chat":          "web-chat.png",
	"shop-data":          "web-data.png",
	"shop-chat-dark-375": "web-chat-dark-375.png",
}

// evalJS evaluates a JavaScript expression (awaiting a promise) into out,
// as a step of run.
func evalJS[T any](expr string, out *T) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise)(ctx, tg)
		if out != nil {
			*out = v
		}
		return err
	})
}

// waitJS polls a JavaScript condition until it is true (the run's deadline
// bounds it), for states no selector names.
func waitJS(cond string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool]("!!("+cond+")", chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		return err
	})
}

// axeSource is the vendored axe-core (make web-vendor), injected into the
// page to check it.
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "axe.min.js"))
	return string(b), err
})

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axe runs axe-core on the page as it is and fails on serious or critical
// violations.
func (tb *tab) axe(screen string) {
	tb.t.Helper()
	src, err := axeSource()
	if err != nil {
		tb.t.Fatalf("axe-core: %v (run make web-vendor)", err)
	}
	var found []axeViolation
	tb.run("axe "+screen, evalJS[any](src, nil), evalJS(`axe.run(document, {resultTypes: ['violations']}).then((r) =>
		r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) =>
			({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' ' + n.failureSummary)})))`, &found))
	for _, v := range found {
		b, _ := json.Marshal(v.Nodes)
		tb.t.Errorf("%s: axe on %s: %s (%s): %s %s", tb.name, screen, v.ID, v.Impact, v.Help, b)
	}
}

// nodeCount counts the elements matching a CSS selector.
func nodeCount(sel string, n *int) chromedp.Action[chromedp.Void] {
	return evalJS(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), n)
}

// fileName keeps letters, digits and dashes of s.
func fileName(s string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s), "-")
}
