#include "server/metrics.h"

#include <cstdio>

namespace g4::server {

void HttpCounters::count(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[{route, status}];
}

std::map<std::pair<std::string, int>, int64_t> HttpCounters::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void metric(std::string& out, const std::string& name, const char* type, const char* help, double value) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + number(value) + "\n";
}

}  // namespace

std::string prometheus_text(const SchedulerMetrics& m, const std::map<std::pair<std::string, int>, int64_t>& http,
                            bool ready) {
  std::string out;
  out += "# HELP gemma4_http_requests_total HTTP requests answered, by route and status.\n"
         "# TYPE gemma4_http_requests_total counter\n";
  for (const auto& [key, n] : http)
    out += "gemma4_http_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  metric(out, "gemma4_ready", "gauge", "1 once the model is loaded.", ready ? 1 : 0);
  metric(out, "gemma4_requests_submitted_total", "counter", "Generation requests accepted by the scheduler.",
         double(m.requests_submitted));
  metric(out, "gemma4_requests_finished_total", "counter", "Generation requests completed.", double(m.requests_finished));
  metric(out, "gemma4_requests_cancelled_total", "counter", "Generation requests cancelled (client gone).",
         double(m.requests_cancelled));
  metric(out, "gemma4_requests_failed_total", "counter", "Generation requests that failed.", double(m.requests_failed));
  metric(out, "gemma4_requests_rejected_total", "counter", "Generation requests refused (queue full, too long).",
         double(m.requests_rejected));
  metric(out, "gemma4_queue_depth", "gauge", "Requests waiting for admission.", double(m.queue_depth));
  metric(out, "gemma4_active_sequences", "gauge", "Sequences being generated.", double(m.active));
  metric(out, "gemma4_cached_sequences", "gauge", "Finished sequences kept for prefix reuse.",
         double(m.cached_sequences));
  metric(out, "gemma4_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", double(m.prompt_tokens));
  metric(out, "gemma4_prompt_tokens_evaluated_total", "counter", "Prompt tokens run through the model.",
         double(m.prompt_tokens_evaluated));
  metric(out, "gemma4_prompt_tokens_cached_total", "counter", "Prompt tokens taken from kept caches.",
         double(m.prompt_tokens_reused));
  metric(out, "gemma4_generated_tokens_total", "counter", "Tokens generated.", double(m.generated_tokens));
  metric(out, "gemma4_prefill_seconds_total", "counter", "Forward time spent on prompt tokens.", m.prefill_seconds);
  metric(out, "gemma4_decode_seconds_total", "counter", "Forward time spent on generated tokens.", m.decode_seconds);
  metric(out, "gemma4_prefill_tokens_per_second", "gauge", "Prompt tokens per second of prefill time (average).",
         m.prefill_seconds > 0 ? double(m.prompt_tokens_evaluated) / m.prefill_seconds : 0);
  metric(out, "gemma4_decode_tokens_per_second", "gauge", "Generated tokens per second of decode time (average).",
         m.decode_seconds > 0 ? double(m.generated_tokens) / m.decode_seconds : 0);
  metric(out, "gemma4_steps_total", "counter", "Batched forward passes.", double(m.steps));
  metric(out, "gemma4_kv_budget_tokens", "gauge", "KV positions shared by all sequences (--ctx-size).",
         double(m.kv_budget_tokens));
  metric(out, "gemma4_kv_reserved_tokens", "gauge", "KV positions reserved by active sequences.",
         double(m.kv_reserved_tokens));
  metric(out, "gemma4_kv_cached_tokens", "gauge", "KV positions held by kept caches.", double(m.kv_cached_tokens));
  metric(out, "gemma4_kv_used_ratio", "gauge", "Share of the KV budget in use (reserved + kept).",
         m.kv_budget_tokens > 0 ? double(m.kv_reserved_tokens + m.kv_cached_tokens) / double(m.kv_budget_tokens) : 0);
  metric(out, "gemma4_kv_bytes", "gauge", "Bytes allocated for KV caches.", double(m.kv_bytes));
  out += "# HELP gemma4_time_to_first_token_seconds Time from request to first generated token.\n"
         "# TYPE gemma4_time_to_first_token_seconds histogram\n";
  int64_t cumulative = 0;
  for (size_t i = 0; i < m.ttft_counts.size(); ++i) {
    cumulative += m.ttft_counts[i];
    const std::string le = i < m.ttft_bounds.size() ? number(m.ttft_bounds[i]) : "+Inf";
    out += "gemma4_time_to_first_token_seconds_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += "gemma4_time_to_first_token_seconds_sum " + number(m.ttft_sum) + "\n";
  out += "gemma4_time_to_first_token_seconds_count " + std::to_string(m.ttft_count) + "\n";
  return out;
}

}  // namespace g4::server
