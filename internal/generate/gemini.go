package generate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/generative-ai-go/genai"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Gemini generates with Google's Gemini through github.com/google/generative-ai-go,
// the SDK the design card names. That SDK is no longer maintained upstream;
// it is confined to this file (and internal/embed's gemini.go), so moving to
// google.golang.org/genai means rewriting only these.
type Gemini struct {
	client *genai.Client
	model  string
}

// DefaultGeminiModel is used when DBCHAT_LLM_MODEL is unset.
const DefaultGeminiModel = "gemini-2.5-flash"

// NewGemini creates the client. endpoint is empty except in tests (a fake
// server); the API key is passed to the SDK and never logged.
func NewGemini(ctx context.Context, apiKey, model, endpoint string) (*Gemini, error) {
	opts := []option.ClientOption{option.WithAPIKey(apiKey)}
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	c, err := genai.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gemini client: %w", err)
	}
	if model == "" {
		model = DefaultGeminiModel
	}
	return &Gemini{client: c, model: model}, nil
}

// Close releases the client.
func (g *Gemini) Close() error { return g.client.Close() }

// Name implements Generator.
func (g *Gemini) Name() string { return "gemini:" + g.model }

// Generate implements Generator.
func (g *Gemini) Generate(ctx context.Context, in Input) (Output, error) {
	reply, use, err := g.ask(ctx, System, Prompt(in))
	if err != nil {
		return Output{Usage: use}, err
	}
	out, err := fromReply(reply)
	out.Usage = use
	return out, err
}

// Question implements Generator.
func (g *Gemini) Question(ctx context.Context, sql string, _ Input) (string, error) {
	reply, _, err := g.ask(ctx, "You describe SQL queries as questions.", QuestionPrompt(sql))
	return strings.TrimSpace(reply), err
}

// ask sends one prompt, retrying 429 and 5xx with exponential backoff, and
// says what the calls cost (every attempt is a call).
func (g *Gemini) ask(ctx context.Context, system, prompt string) (string, Usage, error) {
	m := g.client.GenerativeModel(g.model)
	m.SetTemperature(0)
	m.SystemInstruction = &genai.Content{Parts: []genai.Part{genai.Text(system)}}
	delay := 500 * time.Millisecond
	var use Usage
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		resp, err := m.GenerateContent(cctx, genai.Text(prompt))
		cancel()
		use.Calls++
		if err == nil {
			if u := resp.UsageMetadata; u != nil {
				use.TokensIn, use.TokensOut = int64(u.PromptTokenCount), int64(u.CandidatesTokenCount)
			}
			return replyText(resp), use, nil
		}
		if attempt == 3 || !retryable(err) {
			return "", use, llmError("gemini", err)
		}
		select {
		case <-ctx.Done():
			return "", use, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func replyText(resp *genai.GenerateContentResponse) string {
	var b strings.Builder
	for _, c := range resp.Candidates {
		if c.Content == nil {
			continue
		}
		for _, p := range c.Content.Parts {
			if t, ok := p.(genai.Text); ok {
				b.WriteString(string(t))
			}
		}
		break
	}
	return b.String()
}

func retryable(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && (ge.Code == 429 || ge.Code >= 500)
}

// llmError reports a provider failure without echoing request details (the
// key travels in headers and never reaches the message).
func llmError(provider string, err error) error {
	return apperr.Wrap(apperr.Unavailable, err, "the "+provider+" did not answer; try again later")
}
