package engine

import "context"

// The edge is the part of EdgeSeek that turns text into tokens and logits
// into tokens: tokenizer, chat encoding, stream detokenizer and sampler. In
// production it runs as a WebAssembly module inside wazero (host/edgehost);
// the engine only sees these interfaces, so a native Go edge and the wazero
// edge are interchangeable.

// SamplerParams configures one request's sampling. The zero value is greedy
// decoding. Field meanings follow the OpenAI API.
type SamplerParams struct {
	Temperature       float64         // 0 selects greedy decoding
	TopK              int             // 0 disables top-k
	TopP              float64         // 0 and 1 disable top-p
	MinP              float64         // 0 disables min-p
	RepetitionPenalty float64         // 0 and 1 disable it
	PresencePenalty   float64         // OpenAI presence penalty, [-2, 2]
	FrequencyPenalty  float64         // OpenAI frequency penalty, [-2, 2]
	LogitBias         map[int]float32 // added to the logit of a token id
	Seed              uint64          // seeds the request's own generator
	LogProbs          bool            // report the chosen token's log-probability
	TopLogProbs       int             // how many alternatives to report (needs LogProbs)
}

// Alt is one alternative token with its model log-probability.
type Alt struct {
	ID      int
	LogProb float32
}

// Choice is one sampled token with, when asked, its log-probability and the
// most likely alternatives.
type Choice struct {
	ID      int
	LogProb float32
	Top     []Alt
}

// Sampler picks tokens for one request; it is used by one goroutine at a
// time. If it has a Release() method, the engine calls it when the request
// ends (to free objects held inside an edge module).
type Sampler interface {
	// Sample picks the next token from logits; history is every token of
	// the sequence so far (prompt and generated), for penalties.
	Sample(logits []float32, history []int) (Choice, error)
}

// Detok turns a stream of token ids back into text, one whole UTF-8
// sequence at a time: an incomplete trailing character is held back until
// the tokens that complete it arrive. If it has a Release() method, the
// engine calls it when the request ends.
type Detok interface {
	// Push adds a token and returns the text that is complete now.
	Push(id int) (string, error)
	// Flush returns whatever is still held back at the end of the stream.
	Flush() string
}

// Message is one chat message.
type Message struct {
	Role    string // "system", "user", "assistant"
	Content string
}

// ChatOptions tune the chat encoding.
type ChatOptions struct {
	Thinking bool // DeepSeek-V4 thinking mode
}

// Edge is everything the engine and the servers need from the edge module.
type Edge interface {
	// Encode tokenizes plain text (no BOS added).
	Encode(text string) ([]int, error)
	// EncodeChat encodes a conversation with the model's chat template,
	// ready for the assistant's reply (BOS included).
	EncodeChat(msgs []Message, opt ChatOptions) ([]int, error)
	// TokenText is the raw text of one token, for log-probability reports
	// (it may be an incomplete UTF-8 sequence).
	TokenText(id int) string
	// NewDetok returns a stream detokenizer for one request.
	NewDetok() Detok
	// NewSampler validates p and returns a sampler for one request.
	NewSampler(p SamplerParams) (Sampler, error)
}

// SessionEdges is implemented by edges that can give every request its own
// module instance (abiedge on an edgehost.Template): a module that fails
// then ends that request only, and the requests of one round sample in
// parallel. The engine asks for one per hosted request.
type SessionEdges interface {
	NewSessionEdge(ctx context.Context) (SessionEdge, error)
}

// SessionEdge is one request's edge; the engine closes it when the request
// ends, which frees everything the request created in it.
type SessionEdge interface {
	Edge
	Close()
}

// EngramEdge is implemented by edges that compute V4.1 Engram table rows.
// The engine refuses to run a V4.1 model with Engram layers on an edge that
// lacks it.
type EngramEdge interface {
	// EngramRows returns, for each of tokens[from:], the table row of every
	// Engram layer, given the whole sequence so far.
	EngramRows(tokens []int, from int) ([][][]int64, error)
}
