package usage

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Price is what an LLM model costs per 1,000 tokens in and out, in
// whatever currency the operator configured (DBCHAT_LLM_PRICES).
type Price struct {
	InPer1K  float64 `json:"in_per_1k"`
	OutPer1K float64 `json:"out_per_1k"`
}

// Prices is the price table, by model name as generators report it
// ("gemini-2.5-flash", the part after "gemini:").
type Prices map[string]Price

// ParsePrices reads DBCHAT_LLM_PRICES: a JSON object such as
// {"gemini-1.5-flash":{"in_per_1k":0.000075,"out_per_1k":0.0003}}; empty
// means no prices (every cost is unknown).
func ParsePrices(s string) (Prices, error) {
	p := Prices{}
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("DBCHAT_LLM_PRICES: want {\"model\":{\"in_per_1k\":…,\"out_per_1k\":…}}: %w", err)
	}
	for m, pr := range p {
		if pr.InPer1K < 0 || pr.OutPer1K < 0 {
			return nil, fmt.Errorf("DBCHAT_LLM_PRICES: %q has a negative price", m)
		}
	}
	return p, nil
}

// Cost is the estimated cost of tokens of model, or nil when the table
// does not price it (an unknown model's cost is unknown, not zero).
func (p Prices) Cost(model string, in, out int64) *float64 {
	pr, ok := p[model]
	if !ok {
		return nil
	}
	c := float64(in)/1000*pr.InPer1K + float64(out)/1000*pr.OutPer1K
	return &c
}
