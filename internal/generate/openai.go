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
	reply, err := o.chat(ctx, System, Prompt(in))
	if err != nil {
		return Output{}, err
	}
	return fromReply(reply)
}

// Question implements Generator.
func (o *OpenAI) Question(ctx context.Context, sql string, _ Input) (string, error) {
	reply, err := o.chat(ctx, "You describe SQL queries as questions.", QuestionPrompt(sql))
	return strings.TrimSpace(reply), err
}

func (o *OpenAI) chat(ctx context.Context, system, user string) (string, error) {
	resp, err := o.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:       o.model,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(system), openai.UserMessage(user)},
		Temperature: openai.Float(0),
	})
	if err != nil {
		return "", llmError("openai-compatible server", err)
	}
	if len(resp.Choices) == 0 {
		return "", llmError("openai-compatible server", fmt.Errorf("no choices in the reply"))
	}
	return resp.Choices[0].Message.Content, nil
}
