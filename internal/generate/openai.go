package generate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// OpenAI talks to any OpenAI-compatible chat-completions server (OpenAI,
// Ollama, vLLM, llama.cpp) through the official client library, which
// retries 429 and 5xx with backoff.
type OpenAI struct {
	client openai.Client
	model  string
}

// NewOpenAI configures the client; baseURL may be empty for OpenAI itself.
func NewOpenAI(baseURL, apiKey, model string) *OpenAI {
	opts := []option.RequestOption{option.WithAPIKey(apiKey), option.WithMaxRetries(3), option.WithRequestTimeout(60 * time.Second)}
	if baseURL != "" {
		opts = append(opts, option.WithBaseURL(strings.TrimSuffix(baseURL, "/")+"/"))
	}
	return &OpenAI{client: openai.NewClient(opts...), model: model}
}

// Name implements Generator.
func (o *OpenAI) Name() string { return "openai:" + o.model }

// Generate implements Generator.
func (o *OpenAI) Generate(ctx context.Context, in Input) (Output, error) {
	reply, use, err := o.chat(ctx, System, Prompt(in))
	if err != nil {
		return Output{Usage: use}, err
	}
	out, err := fromReply(reply)
	out.Usage = use
	return out, err
}

// Question implements Generator.
func (o *OpenAI) Question(ctx context.Context, sql string, _ Input) (string, error) {
	reply, _, err := o.chat(ctx, "You describe SQL queries as questions.", QuestionPrompt(sql))
	return strings.TrimSpace(reply), err
}

// chat sends one conversation and says what it cost (the client's retries
// are not visible here: one call).
func (o *OpenAI) chat(ctx context.Context, system, user string) (string, Usage, error) {
	resp, err := o.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:       o.model,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(system), openai.UserMessage(user)},
		Temperature: openai.Float(0),
	})
	use := Usage{Calls: 1}
	if err != nil {
		return "", use, llmError("openai-compatible server", err)
	}
	use.TokensIn, use.TokensOut = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
	if len(resp.Choices) == 0 {
		return "", use, llmError("openai-compatible server", fmt.Errorf("no choices in the reply"))
	}
	return resp.Choices[0].Message.Content, use, nil
}
