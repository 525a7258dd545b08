package server

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// promWriter writes the Prometheus text exposition format.
type promWriter struct{ b strings.Builder }

func (p *promWriter) header(name, typ, help string) {
	fmt.Fprintf(&p.b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p *promWriter) value(name, labels string, v float64) {
	if labels != "" {
		labels = "{" + labels + "}"
	}
	fmt.Fprintf(&p.b, "%s%s %s\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64))
}

func (p *promWriter) metric(name, typ, help string, v float64) {
	p.header(name, typ, help)
	p.value(name, "", v)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	st := s.eng.Stats()
	var p promWriter
	g := func(name, help string, v float64) { p.metric("edgeseek_"+name, "gauge", help, v) }
	c := func(name, help string, v float64) { p.metric("edgeseek_"+name, "counter", help, v) }
	g("active_sessions", "Sessions being prefilled or decoded.", float64(st.ActiveSessions))
	g("queue_depth", "Requests waiting for admission.", float64(st.QueueDepth))
	g("cache_bytes", "Bytes held by sequence caches, the prefix cache included.", float64(st.CacheBytes))
	g("cache_reserved_bytes", "Bytes reserved by active sessions at their maximum length.", float64(st.ReservedBytes))
	g("prefix_cache_bytes", "Bytes held by finished sequences kept for prefix reuse.", float64(st.PrefixCacheBytes))
	g("prefix_cache_entries", "Finished sequences kept for prefix reuse.", float64(st.PrefixEntries))
	g("cache_budget_bytes", "The configured cache budget.", float64(st.BudgetBytes))
	g("websocket_connections", "Open websocket connections.", float64(s.wsConns.Load()))
	c("requests_total", "Requests admitted to the queue.", float64(st.RequestsTotal))
	c("requests_refused_total", "Requests refused (too long, over budget, queue full).", float64(st.RefusedTotal))
	c("requests_cancelled_total", "Requests whose client went away.", float64(st.CancelledTotal))
	c("requests_failed_total", "Requests that failed in the model or the edge.", float64(st.FailedTotal))
	c("prompt_tokens_total", "Prompt tokens computed by prefill.", float64(st.PromptTokensTotal))
	c("prompt_tokens_cached_total", "Prompt tokens taken from the prefix cache.", float64(st.CachedTokensTotal))
	c("generated_tokens_total", "Tokens generated.", float64(st.GeneratedTokensTotal))
	c("prefill_seconds_total", "Forward-pass time spent on prompts.", st.PrefillSeconds)
	c("decode_seconds_total", "Forward-pass time spent on decode steps.", st.DecodeSeconds)
	rate := func(n uint64, sec float64) float64 {
		if sec <= 0 {
			return 0
		}
		return float64(n) / sec
	}
	g("prefill_tokens_per_second", "Prompt tokens per second of prefill forward time, since start.", rate(st.PromptTokensTotal, st.PrefillSeconds))
	g("decode_tokens_per_second", "Generated tokens per second of decode forward time, since start (all sessions).", rate(st.GeneratedTokensTotal, st.DecodeSeconds))

	h := st.EdgeLatency
	p.header("edgeseek_edge_call_seconds", "histogram", "Latency of edge calls (tokenize, sample, detokenize).")
	var cum uint64
	for i, ub := range h.Buckets {
		cum += h.Counts[i]
		p.value("edgeseek_edge_call_seconds_bucket", `le="`+strconv.FormatFloat(ub, 'g', -1, 64)+`"`, float64(cum))
	}
	p.value("edgeseek_edge_call_seconds_bucket", `le="+Inf"`, float64(h.Count))
	p.value("edgeseek_edge_call_seconds_sum", "", h.Sum)
	p.value("edgeseek_edge_call_seconds_count", "", float64(h.Count))

	s.httpMu.Lock()
	keys := make([]string, 0, len(s.httpReqs))
	for k := range s.httpReqs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p.header("edgeseek_http_requests_total", "counter", "HTTP requests by route and status.")
	for _, k := range keys {
		route, code, _ := strings.Cut(k, "\x00")
		p.value("edgeseek_http_requests_total", `path="`+escapeLabel(route)+`",code="`+code+`"`, float64(s.httpReqs[k]))
	}
	s.httpMu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(p.b.String()))
}
