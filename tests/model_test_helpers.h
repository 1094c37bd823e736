// Helpers shared by the model-file tests (HF checkpoints, convert, quantize).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"

namespace g4::test {

// Expects `fn` to throw a g4::Error whose message holds every fragment.
inline void expect_error_containing(const std::function<void()>& fn,
                                    const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected a g4::Error";
  } catch (const Error& e) {
    for (const std::string& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// Logits of every position of one sequence, exact-activation matmuls, two threads.
inline std::vector<float> logits_at_every_position(const Gemma4Model& m,
                                                   const std::vector<int32_t>& ids) {
  ThreadPool pool(2);
  KvCache cache(m.hp, int64_t(ids.size()));
  ForwardPass forward(m, pool, MatmulMode::kPrecise);
  SequenceInput input;
  input.cache = &cache;
  input.tokens = ids;
  for (int32_t i = 0; i < int32_t(ids.size()); ++i) input.output_rows.push_back(i);
  std::vector<float> logits;
  forward.run(std::span<SequenceInput>(&input, 1), logits);
  return logits;
}

}  // namespace g4::test
