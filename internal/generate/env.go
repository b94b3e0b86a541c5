package generate

import (
	"context"
	"fmt"
	"strings"
)

// FromEnv picks the generator: DBCHAT_LLM=gemini|openai|offline, by default
// gemini when GEMINI_API_KEY is set and offline otherwise. DBCHAT_LLM_MODEL
// names the model; DBCHAT_LLM_BASE_URL and DBCHAT_LLM_API_KEY configure an
// OpenAI-compatible server (and DBCHAT_LLM_BASE_URL overrides Gemini's
// endpoint, for proxies).
func FromEnv(ctx context.Context, getenv func(string) string) (Generator, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	kind := strings.ToLower(env("DBCHAT_LLM"))
	if kind == "" {
		kind = "offline"
		if env("GEMINI_API_KEY") != "" {
			kind = "gemini"
		}
	}
	switch kind {
	case "offline":
		return NewOffline(), nil
	case "gemini":
		if env("GEMINI_API_KEY") == "" {
			return nil, fmt.Errorf("DBCHAT_LLM=gemini needs GEMINI_API_KEY")
		}
		return NewGemini(ctx, env("GEMINI_API_KEY"), env("DBCHAT_LLM_MODEL"), env("DBCHAT_LLM_BASE_URL"))
	case "openai":
		if env("DBCHAT_LLM_MODEL") == "" {
			return nil, fmt.Errorf("DBCHAT_LLM=openai needs DBCHAT_LLM_MODEL (and DBCHAT_LLM_BASE_URL for a self-hosted server)")
		}
		return NewOpenAI(env("DBCHAT_LLM_BASE_URL"), env("DBCHAT_LLM_API_KEY"), env("DBCHAT_LLM_MODEL")), nil
	}
	return nil, fmt.Errorf("DBCHAT_LLM=%q: want gemini, openai or offline", kind)
}
