package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// postJSON calls the API with a bearer key, as an operator script would.
func postJSON(t *testing.T, url, key string, body any, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// A member sees the app without the admin's tools: no table creation,
// upload or user management; its feedback waits for an admin's review.
func TestWebMember(t *testing.T) {
	app := newAppServer(t)
	shop, _ := app.db.DemoTenant(t, "Shop")
	var user struct{ ID string }
	postJSON(t, app.url+"/v1/users", shop.APIKey, map[string]any{"email": "mia@shop.invalid", "role": "member"}, &user)
	var key struct {
		APIKey string `json:"api_key"`
	}
	postJSON(t, app.url+"/v1/api-keys", shop.APIKey, map[string]any{"name": "mia", "user_id": user.ID}, &key)

	b := newBrowser(t)
	m := b.tab(t, "member")
	// The identity provider's sign-in starts at the server, for the issuer
	// typed (this one is registered nowhere, so it ends there).
	m.run("provider sign-in", chromedp.Navigate(app.url+"/"), chromedp.WaitVisible(chromedp.ID("issuer")),
		chromedp.SetValue(chromedp.ID("issuer"), "https://idp.invalid/"),
		chromedp.Click(chromedp.CSS(`form[aria-labelledby="idp-title"] button`)),
		waitLocation(app.url+"/v1/sessions/oidc?issuer=https%3A%2F%2Fidp.invalid%2F"))
	m.signIn(app.url, key.APIKey)
	if who := m.text("#who"); who != "mia@shop.invalid · Shop (member)" {
		t.Errorf("header names %q", who)
	}
	m.ask("How many customers do we have?", 1)
	m.run("member feedback", chromedp.Click(chromedp.CSS(".turn .thumbs-up")),
		waitJS(`document.querySelector('.turn .feedback [role=status]').textContent.includes('review')`))

	m.open("data", `[data-table="customers"] button`)
	m.run("customers", chromedp.Click(chromedp.CSS(`[data-table="customers"] button`)),
		waitJS(`document.querySelectorAll('.preview tbody tr').length === 4`))
	for _, sel := range []string{"#create-table", "#upload", `form[aria-label="Add a column"]`} {
		if n := m.count(sel); n != 0 {
			t.Errorf("a member's Data screen has %s", sel)
		}
	}
	m.axe("data (member)")
	m.shot("data")
	m.open("admin", "#key-name")
	if n, form := m.count(`[aria-label="Users"] tbody tr`), m.count(`form[aria-label="Add a user"]`); n != 1 || form != 0 {
		t.Errorf("a member's Admin screen lists %d users and %d user forms, want only itself and none", n, form)
	}
	m.axe("admin (member)")
}

// waitLocation waits until the tab has navigated to url (a navigation
// replaces the page a polling script would run in, so it asks the browser).
func waitLocation(url string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			loc, err := chromedp.Location()(ctx, tg)
			if err == nil && loc == url {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("location %q, want %q: %w", loc, url, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}
