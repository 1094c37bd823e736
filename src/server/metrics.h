// /metrics in the Prometheus text exposition format.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "runtime/scheduler.h"

namespace g4::server {

// HTTP requests answered, by route and status.
class HttpCounters {
 public:
  void count(const std::string& route, int status);
  std::map<std::pair<std::string, int>, int64_t> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> counts_;
};

std::string prometheus_text(const SchedulerMetrics& m, const std::map<std::pair<std::string, int>, int64_t>& http,
                            bool ready);

}  // namespace g4::server
