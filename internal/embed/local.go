package embed

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Local is the default embedder: feature hashing of word unigrams, word
// bigrams and character 3- and 4-grams into Dim signed buckets, then L2
// normalisation. It needs no network and no model, and the same text always
// gives the same vector, on every machine.
//
// It is lexical, not semantic: texts are close when they share words and
// word pieces ("How many customers do we have?" and "how many customers are
// there" are close; "number of clients" is not close to either). That is
// what retrieving near-duplicate questions and the tables a question names
// needs; for paraphrases, use the Gemini embedder.
type Local struct{}

// NewLocal returns the local embedder.
func NewLocal() Local { return Local{} }

// Name implements Embedder. Bump the version when the features change.
func (Local) Name() string { return "local/hash-v1" }

// Dim implements Embedder.
func (Local) Dim() int { return Dim }

// Embed implements Embedder; it never fails except for a cancelled ctx.
func (l Local) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i] = l.Vector(t)
	}
	return out, nil
}

// Feature weights. Stop words count less so that "how many orders do we
// have" is not mostly about "do we have".
const (
	wordWeight     = 1.0
	stopWordWeight = 0.25
	bigramWeight   = 0.5
	// A word's character n-grams share this much weight (L2) in total, so
	// long words do not drown short ones; they make plurals, inflections and
	// typos overlap.
	charGramsWeight = 0.6
)

var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "of": true, "to": true, "in": true, "for": true, "on": true,
	"by": true, "with": true, "and": true, "or": true, "is": true, "are": true, "was": true,
	"were": true, "be": true, "do": true, "does": true, "did": true, "we": true, "i": true,
	"you": true, "our": true, "my": true, "me": true, "there": true, "have": true, "has": true,
	"from": true, "at": true, "as": true, "that": true, "this": true, "it": true, "its": true,
	"please": true, "show": true, "give": true, "tell": true, "what": true, "which": true,
}

// Vector embeds one text.
func (Local) Vector(text string) []float32 {
	v := make([]float32, Dim)
	words := tokens(text)
	if len(words) == 0 {
		// No words: one fixed direction, so the vector is still unit length
		// (a zero vector has no cosine distance).
		add(v, "empty:", 1)
		return v
	}
	for i, w := range words {
		weight := wordWeight
		if stopWords[w] {
			weight = stopWordWeight
		}
		add(v, "w:"+w, weight)
		if i > 0 {
			add(v, "b:"+words[i-1]+" "+w, bigramWeight*weight)
		}
		if !stopWords[w] {
			grams := charGrams(w)
			gw := charGramsWeight / math.Sqrt(float64(len(grams)))
			for _, g := range grams {
				add(v, "c:"+g, gw)
			}
		}
	}
	Normalize(v)
	return v
}

// tokens lowercases text and splits it into words of letters and digits.
// Identifiers keep their underscores and also yield their parts, so
// customer_id matches "customer" and "id".
func tokens(text string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
	}) {
		f = strings.Trim(f, "_")
		if f == "" {
			continue
		}
		out = append(out, f)
		if strings.Contains(f, "_") {
			for _, p := range strings.Split(f, "_") {
				if p != "" {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// charGrams returns the 3- and 4-grams of "<word>".
func charGrams(w string) []string {
	r := []rune("<" + w + ">")
	var out []string
	for n := 3; n <= 4; n++ {
		for i := 0; i+n <= len(r); i++ {
			out = append(out, string(r[i:i+n]))
		}
	}
	if len(out) == 0 { // never: "<x>" has one 3-gram
		out = append(out, string(r))
	}
	return out
}

// add hashes feature into a bucket with a hash-derived sign (signed feature
// hashing keeps collisions from biasing similarities upwards).
func add(v []float32, feature string, weight float64) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(feature))
	sum := h.Sum64()
	i := int(sum % Dim)
	if sum>>63 == 1 {
		weight = -weight
	}
	v[i] += float32(weight)
}
