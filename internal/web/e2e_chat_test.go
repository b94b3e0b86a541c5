package web_test

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/chromedp/chromedp"
)

// chat asks a question and a follow-up: streamed steps, the SQL, the
// grid, a chart with its marks, a chart type switch, and feedback.
func (tb *tab) chat() {
	t := tb.t
	t.Helper()
	tb.open("chat", "#question")
	tb.ask("How many orders per customer?", 1)
	steps, rows := tb.count(".turn .steps li.done"), tb.count(".turn .grid tbody tr")
	tb.run("bar chart", waitJS(`document.querySelector('.chart-box[data-chart="rendered"] svg .mark-rect path')`))
	if marks := tb.count(".chart-box svg .mark-rect path"); steps < 4 || rows != 4 || marks != 4 {
		t.Errorf("answer: %d steps done, %d grid rows, %d bar marks; want ≥ 4, 4, 4", steps, rows, marks)
	}
	if sql := tb.text(".turn details.sql pre"); !strings.Contains(sql, `FROM "orders"`) {
		t.Errorf("SQL shown: %q", sql)
	}
	tb.shot("chat")
	tb.axe("chat")
	tb.run("line chart", evalJS[any](`(() => { const s = document.querySelector('.chart-type'); s.value = 'line'; s.dispatchEvent(new Event('change')); })()`, nil),
		waitJS(`document.querySelector('.chart-box[data-chart="rendered"] svg .mark-line path')`))

	// A follow-up refines the last answer in the same conversation.
	tb.ask("only orders over 50", 2)
	if rows := tb.count(".turn:nth-child(2) .grid tbody tr"); rows != 3 {
		t.Errorf("follow-up: %d rows, want 3 (customers with an order over 50)", rows)
	}
	if got := tb.text(".turn:nth-child(2) .resolved"); !strings.Contains(got, "How many orders per customer") {
		t.Errorf("follow-up read as %q", got)
	}
	var hash string
	tb.run("conversation id", evalJS(`location.hash`, &hash))
	_, tb.lastConversation, _ = strings.Cut(hash, "?c=")

	// 👍 on the first answer: an admin's feedback trains the pair.
	tb.run("feedback", chromedp.Click(chromedp.CSS(".turn:nth-child(1) .thumbs-up")),
		waitJS(`document.querySelector('.turn:nth-child(1) .feedback [role=status]').textContent.includes('learned')`))
	tb.shot("chat-followup")
}

// training finds the pair the feedback trained.
func (tb *tab) training() {
	tb.t.Helper()
	tb.open("training", ".training-item")
	tb.run("trained pair", waitJS(`[...document.querySelectorAll('.training-item[data-kind="sql"] .question')].some((q) => q.textContent === 'How many orders per customer?')`))
	// Train from the catalog: DDL and documentation of the 3 tables appear.
	tb.run("train from catalog", chromedp.Click(chromedp.CSS(".train-catalog")),
		waitJS(`document.querySelector('.train-catalog + * ').textContent.startsWith('Trained on 3 tables')`),
		waitJS(`document.querySelectorAll('.training-item[data-kind="ddl"]').length === 3`))
	// A Vanna export (get_training_data().to_csv()) adds its pair.
	file := filepath.Join(tb.t.TempDir(), "vanna.csv")
	csv := "id,question,content,training_data_type\n1-sql,How many pets do we have?,SELECT count(*) FROM pets,sql\n"
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.run("vanna import", chromedp.SetUploadFiles(chromedp.ID("vanna-file"), []string{file}),
		chromedp.Click(chromedp.CSS("#vanna button[type=submit]")),
		waitJS(`document.querySelector('#vanna-out').textContent.startsWith('Imported 1 (1 pairs')`),
		waitJS(`[...document.querySelectorAll('.training-item .question')].some((q) => q.textContent === 'How many pets do we have?')`))
	tb.axe("training")
	tb.shot("training")
}

// admin mints an API key, shown once.
func (tb *tab) admin() {
	tb.t.Helper()
	tb.open("admin", "#key-name")
	tb.run("new key", chromedp.SetValue(chromedp.ID("key-name"), "laptop"), chromedp.Click(chromedp.CSS(`form[aria-label="Create an API key"] button`)),
		waitJS(`(document.querySelector('#new-key-value') || {}).textContent?.startsWith('dbc_')`))
	tb.axe("admin")
	tb.shot("admin")
}

// small checks the chat screen at 375 px wide (nothing wider than the
// screen) and in the dark theme (axe checks its contrast).
func (tb *tab) small() {
	t := tb.t
	t.Helper()
	tb.open("chat", "#question")
	var overflow int
	// Reopened, the conversation shows its turns' SQL; the rows come back
	// on demand (turns keep none).
	tb.run("375 px", chromedp.EmulateViewport(375, 800), chromedp.Click(chromedp.CSS(".convs li button")),
		waitJS(`document.querySelectorAll('.turn').length === 2`),
		chromedp.Click(chromedp.CSS(".turn:nth-child(1) .rerun-btn")),
		waitJS(`document.querySelectorAll('.turn:nth-child(1) .grid tbody tr').length === 4`),
		evalJS(`document.documentElement.scrollWidth - window.innerWidth`, &overflow))
	if overflow > 0 {
		t.Errorf("at 375 px the page is %d px wider than the screen", overflow)
	}
	tb.shot("chat-375")
	tb.run("dark", chromedp.Click(chromedp.ID("theme")), waitJS(`document.documentElement.dataset.theme === 'dark'`))
	tb.axe("chat (dark, 375 px)")
	tb.shot("chat-dark-375")
	tb.run("reset", chromedp.Click(chromedp.ID("theme")), chromedp.EmulateViewport(1280, 900))
}
